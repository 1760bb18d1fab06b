"""DeepSpeed ZeRO-2 and ZeRO-3: `mamba-multimodal train instruct` through `accelerate launch` with the README's
DeepSpeed config, 2 CPU processes with 1 sample each, trains the weights that one process trains with 2 samples, and
the folder it saves loads with `from_pretrained`.

DeepSpeed is not in the tested lock: `make test-deepspeed` builds `.venv-deepspeed` (a copy of .venv plus deepspeed,
no CUDA, no ops built ahead; its CPU accelerator JIT-builds one C++ op, the shared-memory allreduce, with g++ on first
use and talks over gloo when Intel's oneCCL bindings are missing) and runs this file there; elsewhere it skips.

The runs agree for the reasons `test_cli_launch.py` gives for DDP (ZeRO averages the gradients as DDP does;
measured: 1.2e-7 apart after 3 AdamW steps, both stages). On CPU, `--ddp-backend gloo` is what makes accelerate count
the processes: without it its state has no backend and one process (DeepSpeed then fails "train_batch_size is not
equal to micro_batch_per_gpu * gradient_acc_step * world_size 1 != 1 * 1 * 2"), and `--use-cpu` turns DeepSpeed off.
"""

import os
import sys
from pathlib import Path

import pytest
from fixtures_llava import write_instructions
from launching import free_port
from test_cli_launch import assert_trained_as_one_process, train

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


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_instructions(tmp_path_factory.mktemp("llava"))


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
    assert_trained_as_one_process(output, single_process)  # the weights gathered from both processes under ZeRO-3


def test_zero3_without_gathering_the_weights_stops_before_training_and_names_the_setting(data, tmp_path):
    config = tmp_path / "deepspeed.yaml"
    config.write_text(ACCELERATE_CONFIG.format(port=free_port(), stage=3).replace("_model: true", "_model: false"))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    err = train(launcher, data, tmp_path / "run", 1, "--ddp-backend", "gloo", check=False).stderr
    lines = [line for line in err.splitlines() if line.startswith("mamba-multimodal: error:")]
    assert len(lines) == 2, err  # one per process, then both stop
    assert "ZeRO-3" in lines[0] and '"stage3_gather_16bit_weights_on_model_save": true' in lines[0]
    assert not (tmp_path / "run" / "checkpoint-1").exists()
