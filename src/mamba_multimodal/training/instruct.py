"""The `instruct` task: VLM-Mamba trained on LLaVA-format conversations (`data.load_llava`: LLaVA's 558K alignment
captions or its 665K instruction mix, multi-turn, text-only rows mixed in), through the processor's chat template with
labels on the assistant (gpt) turns and their EOS only (`VLMambaDataCollator`, `processing.chat_vlm_mamba`).

    mamba-multimodal train instruct --dataset llava_v1_5_mix665k.json --image-root DIR [--model FOLDER]

The first `EVAL_ROWS` rows of a seeded shuffle (a tenth of a smaller file) are held out; the final metric is their
loss (and its perplexity).
"""

from __future__ import annotations

import math
from pathlib import Path

from .arguments import TaskRun, UsageError, loaded
from .builders import _run, _vlm

EVAL_ROWS = 1000  # held out for the eval loss: enough for a stable mean, cheap next to 665K training rows


def instruct_task(task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    """(model, processor) as the other VLM tasks (a fresh easy-VQA-sized VLM, `tiny`, or --model), the LLaVA rows of
    --dataset with their images under --image-root, the chat collator."""
    from ..processing.processing_vlm_mamba import VLMambaDataCollator
    from .data import load_llava

    source, image_root = data_args.dataset, data_args.image_root
    if not Path(source).expanduser().is_file():
        raise UsageError(f"--dataset: {task.name} reads a LLaVA-format JSON file, got {source!r}")
    if image_root is not None and not Path(image_root).expanduser().is_dir():
        raise UsageError(f"--image-root: no such folder: {image_root}")
    rows = loaded("--dataset", source, lambda: load_llava(source, image_root))
    if len(rows) < 2:
        raise UsageError(f"--dataset: {source} holds {len(rows)} usable row(s); training and evaluation need 2")
    splits = rows.train_test_split(test_size=min(EVAL_ROWS, max(1, len(rows) // 10)), seed=0)
    model, processor = _vlm(task, model_args, evaluate_only)
    collator = VLMambaDataCollator(processor)
    held_out = f"held-out {len(splits['test'])} rows of the file"
    return _run(model, processor, splits["train"], splits["test"], data_args, collator, None, source, held_out)


def instruct_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """The held-out rows' loss (labels on the assistant turns) and its perplexity."""
    loss = trainer.evaluate(run.eval)["eval_loss"]
    return {"eval loss": loss, "perplexity": math.exp(min(loss, 50.0))}


__all__ = ["EVAL_ROWS", "instruct_score", "instruct_task"]
