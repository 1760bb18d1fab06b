"""bench/gpu_check.py, the script prepared for a GPU machine, in its CPU dry run: every family's numerics rows, the
training-step table and the JSON."""

import importlib
import json
from pathlib import Path

from mamba_multimodal.registry import FAMILIES

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_the_dry_run_checks_every_family_and_times_both_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/common.py as `common`
    gpu_check = importlib.import_module("gpu_check")
    output = tmp_path / "gpu_check.json"

    assert gpu_check.main(["--dry-run", "--output", str(output)]) == 0

    report = json.loads(output.read_text())
    expected = {
        (family.name, model_class.__name__)
        for family in FAMILIES.values()
        for model_class in family.auto_models.values()
    }
    assert {(row["family"], row["class"]) for row in report["numerics"]} == expected
    assert all(row["ok"] for row in report["numerics"])
    assert [run["path"] for run in report["training_step"]["runs"]] == ["pytorch", "cpu"]
    assert all(run["step_s"] > 0 for run in report["training_step"]["runs"])
    printed = capsys.readouterr().out
    assert "| mamba | MambaForCausalLM |" in printed and "device: CPU (dry run)" in printed
