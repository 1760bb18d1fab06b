"""Trains a tiny Coupled Mamba for a few steps with `MambaTrainer` and saves it: the script that
`test_trainer.py` runs in one process (batch 2b) and in two (`torchrun` or `accelerate launch`, batch b each).

    torchrun --standalone --nproc_per_node 2 tests/training/distributed_train.py OUTPUT --batch-size 2
    accelerate launch --multi_gpu --num_processes 2 tests/training/distributed_train.py OUTPUT --batch-size 2
    python tests/training/distributed_train.py OUTPUT --batch-size 4          # the same model

(`accelerate launch --cpu` starts one process whatever `--num_processes` says: accelerate 1.15 sends `--cpu` to its
single-process launcher unless an MPI hostfile is given. `--multi_gpu` launches through torchrun; with no GPU, or
with `use_cpu=True` as here, the processes run on CPU over gloo.)

Why the two agree without any setting: Trainer's dataloader goes through accelerate, which replaces the random
sampler with a seeded one (the same permutation in every process, whatever their number) and gives process i the
batches i, i + P, i + 2P, ... of size b, so one optimizer step sees exactly the samples [2b·k, 2b·(k+1)) of the
permutation, as one process with batch 2b does; DDP then averages the per-process mean losses' gradients, which is
the gradient of the mean over 2b (Coupled Mamba has no BatchNorm, and no dropout in this config).
"""

import argparse

import datasets
import torch
from transformers import TrainingArguments, set_seed

from mamba_multimodal.modeling.modeling_coupled_mamba import CoupledMambaForSequenceClassification
from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.training import MambaTrainer
from mamba_multimodal.training.flow import leave_process_group

SEED = 5


def sentiment_data(size: int = 32, length: int = 5) -> datasets.Dataset:
    """Random features in the tiny config's sizes and random scores, the same in every process."""
    g = torch.Generator().manual_seed(1)
    config = FAMILIES["coupled_mamba"].tiny_config()
    sizes = dict(zip(config.modalities, config.input_sizes, strict=True))
    columns = {f"{m}_features": torch.randn(size, length, d, generator=g).numpy() for m, d in sizes.items()}
    labels = torch.randn(size, generator=g).numpy()
    return datasets.Dataset.from_dict({**columns, "labels": labels}).with_format("torch")


def train(output_dir, batch_size: int, max_steps: int = 4) -> MambaTrainer:
    """Trains for `max_steps` steps of `batch_size` samples per process (AdamW's noise amplification kept out: plain
    SGD, so that 1 and 2 processes agree to float rounding), with a checkpoint every 2 steps, and saves the model in
    `output_dir`."""
    args = TrainingArguments(
        str(output_dir),
        use_cpu=True,
        per_device_train_batch_size=batch_size,
        max_steps=max_steps,
        optim="sgd",
        learning_rate=0.1,
        weight_decay=0.1,
        save_strategy="steps",  # checkpoint-2, checkpoint-4: every process writes its RNG state into them
        save_steps=2,
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=SEED,
    )
    set_seed(args.seed)  # before building the model: the initial weights come from the seed
    model = CoupledMambaForSequenceClassification(FAMILIES["coupled_mamba"].tiny_config())
    trainer = MambaTrainer(model=model, args=args, train_dataset=sentiment_data())
    trainer.train()
    trainer.save_model()  # the main process writes output_dir/model.safetensors
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--batch-size", type=int, required=True, help="per process")
    parser.add_argument("--max-steps", type=int, default=4)
    args = parser.parse_args()
    trainer = train(args.output_dir, args.batch_size, args.max_steps)
    if trainer.is_world_process_zero():
        world_size = trainer.args.world_size
        print(f"trained on {world_size} process(es), global batch {world_size * args.batch_size}")
    del trainer  # with its DDP wrapper, before the group ends
    leave_process_group()


if __name__ == "__main__":
    main()
