"""DeepSpeed ZeRO-2 and ZeRO-3: `mamba-multimodal train instruct` through `accelerate launch` with the README's
DeepSpeed config, 2 CPU processes with 1 sample each, trains the weights that one process trains with 2 samples, and
the folder it saves loads with `from_pretrained`.

DeepSpeed is not in the tested lock: `make test-deepspeed` builds `.venv-deepspeed` (a copy of .venv plus deepspeed,
no CUDA, no ops built ahead; its CPU accelerator JIT-builds one C++ op, the shared-memory allreduce, with g++ on first
use and talks over gloo when Intel's oneCCL bindings are missing) and runs this file there; elsewhere it skips.

Why the runs agree: accelerate's seeded sampler gives each process every other sample of the single run's batches,
Trainer counts the labelled tokens over both processes (`average_tokens_across_devices`), so the two per-process
losses sum to the single run's loss over its 2 samples, and ZeRO averages the gradients; the optimizer is AdamW with
the same clipping (measured: 1.2e-7 apart after 3 steps, both stages). On CPU, `--ddp-backend gloo` is what makes
accelerate count the processes: without it its state has no backend and one process (DeepSpeed then fails
"train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size 1 != 1 * 1 * 2"), and
`--use-cpu` turns DeepSpeed off.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_llava import write_instructions
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

import mamba_multimodal  # noqa: F401  (registers the model type with the Auto classes)

try:
    import deepspeed  # noqa: F401
except ImportError:
    if os.environ.get("DEEPSPEED_REQUIRED"):  # make test-deepspeed: a broken environment fails, never skips
        raise
    pytest.skip(
        "deepspeed is not installed here: `make test-deepspeed` runs this test in .venv-deepspeed",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

TRAINING = ["--model", "tiny", "--max-steps", "3", "--report-to", "none", "--logging-steps", "1", "--seed", "7"]
# The README's accelerate config for DeepSpeed, on 2 processes in fp32 (the CPU has no fp16 / bf16 training here).
ACCELERATE_CONFIG = """\
distributed_type: DEEPSPEED
num_processes: 2
num_machines: 1
mixed_precision: 'no'
main_process_port: {port}
deepspeed_config:
  zero_stage: {stage}
  offload_optimizer_device: none
  offload_param_device: none
  gradient_clipping: 1.0
  zero3_save_16bit_model: true
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_instructions(tmp_path_factory.mktemp("llava"))


def train(launcher: list[str], data: Path, output: Path, batch_size: int, *options: str, check: bool = True) -> str:
    """Runs `mamba-multimodal train instruct` under `launcher`; returns its stderr."""
    command = [*launcher, "-m", "mamba_multimodal_cli", "train", "instruct", "--dataset", str(data), *TRAINING,
               "--per-device-train-batch-size", str(batch_size), *options, "--output-dir", str(output)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(output.parent / "hf_home")}  # no user accelerate config
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert (result.returncode == 0) == check, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stderr


def logged_losses(output: Path) -> list[float]:
    return [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
            if "loss" in entry]  # fmt: skip


@pytest.fixture(scope="module")
def single_process(data, tmp_path_factory) -> Path:
    """The reference: one process, 2 samples a step, no DeepSpeed."""
    output = tmp_path_factory.mktemp("one") / "run"
    train([sys.executable], data, output, 2)
    return output


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_over_two_processes_trains_and_saves_the_weights_of_one_process(stage, data, single_process, tmp_path):
    config = tmp_path / "deepspeed.yaml"
    config.write_text(ACCELERATE_CONFIG.format(port=free_port(), stage=stage))
    output = tmp_path / "run"
    train([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)], data, output, 1,
          "--ddp-backend", "gloo")  # fmt: skip

    # DeepSpeed trained: its checkpoint holds one partition of the optimizer state per process.
    partitions = sorted(p.name for p in (output / "checkpoint-3" / "global_step3").glob("*optim_states.pt"))
    assert len(partitions) == 2, partitions
    # Each step's loss is the single process's loss over the same 2 samples.
    assert logged_losses(output) == pytest.approx(logged_losses(single_process), abs=1e-4)
    assert len(logged_losses(output)) == 3
    # The saved weights (gathered from both processes under ZeRO-3) are the single process's.
    sharded, whole = load_file(output / "model.safetensors"), load_file(single_process / "model.safetensors")
    assert sharded.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(sharded[name], whole[name], atol=1e-5, rtol=0, msg=name)
    reloaded = AutoModelForImageTextToText.from_pretrained(output).state_dict()
    for name in whole:
        torch.testing.assert_close(reloaded[name], sharded[name], atol=0, rtol=0, msg=name)


def test_zero3_without_gathering_the_weights_stops_before_training_and_names_the_setting(data, tmp_path):
    config = tmp_path / "deepspeed.yaml"
    config.write_text(ACCELERATE_CONFIG.format(port=free_port(), stage=3).replace("_model: true", "_model: false"))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    err = train(launcher, data, tmp_path / "run", 1, "--ddp-backend", "gloo", check=False)
    lines = [line for line in err.splitlines() if line.startswith("mamba-multimodal: error:")]
    assert len(lines) == 2, err  # one per process, then both stop
    assert "ZeRO-3" in lines[0] and '"stage3_gather_16bit_weights_on_model_save": true' in lines[0]
    assert not (tmp_path / "run" / "checkpoint-1").exists()
