"""Trains a tiny VLM-Mamba for a few steps, sharded with FSDP2 over 2 processes or whole in one, and saves its weights:
the script `test_fsdp.py` runs both ways and compares the results.

    torchrun --standalone --nproc_per_node 2 tests/training/fsdp_train.py OUTPUT           # FSDP, 2 processes
    python tests/training/fsdp_train.py OUTPUT                                             # the same model, 1 process

FSDP2's `fully_shard` wraps each of the model's `_no_split_modules` blocks (the LM's `MambaBlock`, the tower's
layers) and then the root, as accelerate's `TRANSFORMER_BASED_WRAP` policy does on GPUs. Accelerate itself runs FSDP
only on accelerators (its `MULTI_CPU` state never turns into `FSDP`), so on CPU the sharding is applied here directly,
over gloo; what is under test is the model under FSDP: that its blocks shard, that parameters are reached only through
the wrapped modules, and that the sharded run computes the single-process gradients.

Why the two runs agree: each of the P processes takes a contiguous 1/P of every global batch, every sample has the
same number of labelled tokens (so the per-process mean losses average to the global mean), and FSDP averages the
gradients over processes in its reduce-scatter; the optimizer is plain SGD, so the update is the same to float
rounding. `--recipe cobra` freezes the vision tower (Cobra's one stage), `--recipe full` trains everything.
"""

import argparse
import os

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from mamba_multimodal.modeling.modeling_vlm_mamba import VLMambaForConditionalGeneration
from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.training.flow import leave_process_group

SEED, GLOBAL_BATCH, TEXT_LENGTH = 3, 4, 6


def tiny_vlm(recipe: str) -> VLMambaForConditionalGeneration:
    torch.manual_seed(SEED)  # the same initial weights in every process and in the single-process run
    model = VLMambaForConditionalGeneration(FAMILIES["vlm_mamba"].tiny_config())
    if recipe == "cobra":
        model.model.vision_tower.requires_grad_(False)
    return model.train()


def batches(config, steps: int):
    """`steps` global batches: an image and its text per sample, labels on the text (the image tokens are -100)."""
    g = torch.Generator().manual_seed(SEED)
    size = config.vision_config.image_size
    image_tokens = torch.full((GLOBAL_BATCH, config.image_seq_length), config.image_token_id)
    for _ in range(steps):
        text = torch.randint(0, config.image_token_id, (GLOBAL_BATCH, TEXT_LENGTH), generator=g)
        input_ids = torch.cat([image_tokens, text], dim=1)
        labels = torch.cat([torch.full_like(image_tokens, -100), text], dim=1)
        pixel_values = torch.randn(GLOBAL_BATCH, 3, size, size, generator=g)
        yield {"input_ids": input_ids, "labels": labels, "pixel_values": pixel_values}


def shard(model, world_size: int) -> None:
    """FSDP2 over a CPU mesh: each `_no_split_modules` block is its own unit, the root holds the rest."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world_size,))
    blocks = set(model._no_split_modules)
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def full_state_dict(model, sharded: bool) -> dict[str, torch.Tensor]:
    if not sharded:
        return {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {name: tensor.contiguous() for name, tensor in get_model_state_dict(model, options=options).items()}


def train(output_dir: str, recipe: str, steps: int) -> int:
    """Returns the number of wrapped blocks (0 in one process)."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    sharded = world_size > 1
    if sharded:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if sharded else 0
    model = tiny_vlm(recipe)
    wrapped = sum(type(m).__name__ in set(model._no_split_modules) for m in model.modules()) if sharded else 0
    if sharded:
        shard(model, world_size)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    per_process = GLOBAL_BATCH // world_size
    for batch in batches(model.config, steps):
        local = {key: value[rank * per_process : (rank + 1) * per_process] for key, value in batch.items()}
        model(**local).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    state = full_state_dict(model, sharded)
    if rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        save_file({k: v for k, v in state.items() if "lm_head" not in k or not model.config.tie_word_embeddings},
                  os.path.join(output_dir, "model.safetensors"))  # fmt: skip
        print(f"trained on {world_size} process(es), {wrapped} FSDP blocks")
    # Both processes leave together, the sharded model and its optimizer dropped first: a process that tears its
    # gloo pairs down while the other still has work in flight (rank 0 writing the file) once aborted at exit
    # ("terminate called without an active exception").
    del model, optimizer
    leave_process_group()
    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--recipe", choices=("cobra", "full"), default="cobra")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    train(args.output_dir, args.recipe, args.steps)


if __name__ == "__main__":
    main()
