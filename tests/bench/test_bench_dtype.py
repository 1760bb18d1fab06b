"""bench/bench_dtype.py in its --quick run (tiny configs, one call per row): every family's training-step and inference
rows in float32 and bf16, with the policy and (on a CPU without native bf16) without it, the table and the JSON."""

import importlib
import json
from pathlib import Path

from mamba_multimodal.modeling import precision

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_quick_run_times_every_model_in_every_precision(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/common.py as `common`
    bench_dtype = importlib.import_module("bench_dtype")
    output = tmp_path / "bench_dtype.json"

    assert bench_dtype.main(["--quick", "--output", str(output)]) == 0

    report = json.loads(output.read_text())
    policies = ["on"] if precision.has_native_bf16() else ["on", "off (torch alone)"]
    expected = {
        (model, kind, bf16, policy)
        for model in bench_dtype.MODELS
        for kind, bf16 in bench_dtype.ROWS
        for policy in (["on"] if bf16 == "fp32" else policies)
    }
    rows = report["rows"]
    assert {(row["model"], row["kind"], row["precision"], row["policy"]) for row in rows} == expected
    assert all(row["seconds"] > 0 and row["bf16_over_fp32"] > 0 for row in rows)
    assert all(row["bf16_over_fp32"] == 1 for row in rows if row["precision"] == "fp32")
    assert report["native_bf16"] == list(precision.native_bf16_flags()) and len(report["load_average_after"]) == 3
    printed = capsys.readouterr().out
    assert "| model | step | precision | policy | seconds | bf16 / fp32 |" in printed and "native bf16:" in printed


def test_a_models_rows_are_timed_round_robin(monkeypatch):
    """One call of each row per round, each round starting one row later, after one warm-up call of each."""
    monkeypatch.syspath_prepend(str(BENCH))
    bench_dtype = importlib.import_module("bench_dtype")
    order = []
    calls = [lambda name=name: order.append(name) for name in "abc"]

    medians = bench_dtype.interleaved_median_seconds(calls, repeats=3)

    assert order == list("abc" + "abc" + "bca" + "cab")
    assert len(medians) == 3 and all(m >= 0 for m in medians)
