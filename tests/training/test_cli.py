"""`mamba-multimodal`: a fast --help, the registry's tasks, one-line mistakes, and a tiny end-to-end run per task."""

import json
import subprocess
import sys
import time

import pytest
from fixtures_mmsa import write_mmsa_pickle

import mamba_multimodal_cli
from mamba_multimodal.registry import tasks

TINY_RUN = ["--model", "tiny", "--max-steps", "2", "--max-train-samples", "8", "--max-eval-samples", "4",
            "--per-device-train-batch-size", "4", "--per-device-eval-batch-size", "4"]  # fmt: skip


def run(argv, capsys) -> tuple[int, str, str]:
    try:
        code = mamba_multimodal_cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_answers_without_importing_torch():
    probe = (
        "import sys, time; start = time.perf_counter(); import mamba_multimodal_cli as cli\n"
        "try: cli.main(['--help'])\nexcept SystemExit: pass\n"
        "print('SECONDS', time.perf_counter() - start, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    start = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    seconds, torch_loaded, transformers_loaded = output.rsplit("SECONDS", 1)[1].split()
    assert torch_loaded == "False" and transformers_loaded == "False"
    assert float(seconds) < 0.5 and wall < 3.0, (seconds, wall)  # measured 0.05 s / 0.1 s; margin for a loaded CPU
    assert "image-text-classification" in output


def test_the_launcher_tasks_are_the_registry_tasks():
    assert tuple(mamba_multimodal_cli.TASKS) == tuple(tasks())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "vqq"], "TASK"),
        (["train"], "TASK"),
        (["train", "vqa", "--model", "./no/such/folder"], "--model"),
        (["train", "vqa", "--dataset", "./no/such/data"], "--dataset"),
        (["train", "vqa", "--model", "tiny", "--config-overrides", "hiden_size=3"], "hidden_size"),
        (["train", "image-classification", "--model", "tiny", "--config-overrides", "depths=[1,2]"], "depths"),
        (["train", "vqa", "--model", "nobody/no-such-model-here"], "--model"),
        (["train", "image-classification", "--dataset", "nobody/no-such-data"], "--dataset"),
        (["train", "vqa", "--no-such-option"], "--no-such-option"),
        (["train", "sentiment"], "--dataset"),
        (["evaluate", "vqa"], "--model"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_a_mistake_is_one_line_naming_it_and_exit_code_2(argv, named, capsys):
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("mamba-multimodal: error: ") and named in lines[0], lines[0]


@pytest.mark.parametrize("task", ["image-classification", "caption", "vqa", "image-text-classification"])
def test_train_then_evaluate_each_vision_task(task, tmp_path, capsys):
    output = tmp_path / "run"
    code, out, _ = run(["train", task, *TINY_RUN, "--output-dir", str(output)], capsys)
    assert code == 0
    assert "trainable" in out and "torch threads" in out and "| metric" in out
    for name in ("config.json", "model.safetensors", "training_curves.png", "metrics.json"):
        assert (output / name).is_file(), name
    assert (output / "preprocessor_config.json").is_file() or (output / "processor_config.json").is_file()
    metrics = json.loads((output / "metrics.json").read_text())
    code, out, _ = run(["evaluate", task, "--model", str(output), "--max-eval-samples", "4"], capsys)
    assert code == 0 and all(name in out for name in metrics)


def test_train_sentiment_on_mmsa_features(tmp_path, capsys):
    data = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(data, "mosei", aligned=True, sizes={"train": 8, "valid": 4, "test": 4})
    output = tmp_path / "run"
    argv = ["train", "sentiment", "--model", "tiny", "--dataset", str(data), "--max-steps", "2",
            "--per-device-train-batch-size", "4", "--output-dir", str(output)]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0 and "test_MAE" in out
    assert (output / "training_curves.png").is_file() and (output / "metrics.json").is_file()
