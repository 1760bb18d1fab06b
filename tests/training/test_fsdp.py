"""FSDP: a tiny VLM-Mamba sharded over 2 CPU processes (FSDP2, gloo) trains the weights one process trains.

Tolerance: 1e-5 absolute on every weight after 3 SGD steps at lr 0.5 (the sharded run reduces gradients in another
order: float32 rounding, measured at ~1e-7). The weights must also move by far more than that, and the frozen tower
(Cobra's recipe) must not move at all.
"""

import sys
from pathlib import Path

import pytest
import torch
from fsdp_train import tiny_vlm
from launching import launched
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "fsdp_train.py"


def run(command: list[str], tmp_path: Path) -> str:
    return launched(command, tmp_path / "hf_home", finished="trained on ").stdout


@pytest.mark.parametrize("recipe", ["cobra", "full"])
def test_fsdp_over_two_processes_trains_the_weights_of_one_process(tmp_path, recipe):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = run([*launcher, str(SCRIPT), str(tmp_path / "two"), "--recipe", recipe], tmp_path)
    model = tiny_vlm(recipe)
    blocks = sum(type(m).__name__ in model._no_split_modules for m in model.modules())
    assert blocks == model.config.text_config.num_hidden_layers + model.config.vision_config.num_hidden_layers
    assert f"trained on 2 process(es), {blocks} FSDP blocks" in two
    run([sys.executable, str(SCRIPT), str(tmp_path / "one"), "--recipe", recipe], tmp_path)

    sharded = load_file(tmp_path / "two" / "model.safetensors")
    whole = load_file(tmp_path / "one" / "model.safetensors")
    initial = model.state_dict()
    assert sharded.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(sharded[name], whole[name], atol=1e-5, rtol=0, msg=name)
    moved = {name: (whole[name] - initial[name]).abs().max().item() for name in whole}
    assert max(moved[name] for name in whole if "language_model" in name) > 1e-2, "the LM must train"
    tower = [moved[name] for name in whole if "vision_tower" in name]
    assert (max(tower) == 0) if recipe == "cobra" else (max(tower) > 1e-4)
