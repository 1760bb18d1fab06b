"""`mamba-multimodal train` under `accelerate launch` on 2 CPU processes (DDP over gloo, `--use-cpu`): 1 sample per
process trains the weights one process trains with 2 samples, and the main process alone writes the folder (every
process used to save, and the second one failed on the folder transformers had left empty for it).

Why the runs agree: accelerate's seeded sampler gives each process every other sample of the single run's batches,
Trainer counts the labelled tokens over both processes (`average_tokens_across_devices`), so the two per-process
losses sum to the single run's loss over its 2 samples; DDP averages the gradients, and AdamW with the same clipping
follows (measured: 1.2e-7 apart after 3 steps). `test_deepspeed.py` runs the same comparison under ZeRO-2 and ZeRO-3.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_llava import write_instructions
from launching import free_port, launched
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

TRAINING = ["--model", "tiny", "--max-steps", "3", "--report-to", "none", "--logging-steps", "1", "--seed", "7"]


def train(launcher: list[str], data: Path, output: Path, batch_size: int, *options: str, check: bool = True
          ) -> subprocess.CompletedProcess:  # fmt: skip
    """Runs `mamba-multimodal train instruct` on `data` under `launcher`."""
    command = [*launcher, "-m", "mamba_multimodal_cli", "train", "instruct", "--dataset", str(data), *TRAINING,
               "--per-device-train-batch-size", str(batch_size), *options, "--output-dir", str(output)]  # fmt: skip
    return launched(command, output.parent / "hf_home", finished="wrote ", succeeds=check, timeout=600)


def logged_losses(output: Path) -> list[float]:
    return [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
            if "loss" in entry]  # fmt: skip


def assert_trained_as_one_process(output: Path, single_process: Path) -> None:
    """Each step's loss and the saved weights are the single process's; the folder reloads."""
    from transformers import AutoModelForImageTextToText

    import mamba_multimodal  # noqa: F401  (registers the model type with the Auto classes)

    assert len(logged_losses(output)) == 3
    assert logged_losses(output) == pytest.approx(logged_losses(single_process), abs=1e-4)
    launched, whole = load_file(output / "model.safetensors"), load_file(single_process / "model.safetensors")
    assert launched.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(launched[name], whole[name], atol=1e-5, rtol=0, msg=name)
    reloaded = AutoModelForImageTextToText.from_pretrained(output).state_dict()
    for name in whole:
        torch.testing.assert_close(reloaded[name], launched[name], atol=0, rtol=0, msg=name)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_instructions(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def single_process(data, tmp_path_factory) -> Path:
    """The reference: one process, 2 samples a step."""
    output = tmp_path_factory.mktemp("one") / "run"
    train([sys.executable], data, output, 2)
    return output


def test_two_processes_under_accelerate_launch_train_and_save_what_one_process_does(data, single_process, tmp_path):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(free_port())]  # fmt: skip
    report = train(launcher, data, tmp_path / "run", 1, "--use-cpu").stdout
    assert_trained_as_one_process(tmp_path / "run", single_process)
    # The main process alone reports (and would push with --push_to_hub); the other waits for it before leaving.
    assert [report.count(line) for line in ("task: instruct", " steps in ", " wrote ")] == [1, 1, 1], report
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".staging")]
