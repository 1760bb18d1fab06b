"""VLM-Mamba learning check: a small VLM trained from scratch with `Trainer` on easy-VQA's train split, answers
generated for the whole test split and scored with the official VQA accuracy.

easy-VQA ships inside the `easy-vqa` package (4,000 train / 1,000 test images of 64×64, 38,575 / 9,673 questions about
the one shape in each image: its shape, its colour, yes/no questions; 13 answers). A public CNN + LSTM classifier
reports 87.6% on it; this model has to *generate* the answer, token by token, after "<image>Question: ... Answer:".

The recipe (`mamba_multimodal.training.recipes`): `easy_vqa_vlm(vision)` (a 3-layer width-128 Mamba LM, the bundled
tokenizer) trained on the questions with each training image's description ("a red circle") mixed in
`--caption-repeats` times. (b) `--vision mambavision` (default); (c) the same recipe with `--vision vision_mamba`
(attention-free) or `--vision patch` (no encoder). Training stops at the end of `--epochs` or after
`--budget-minutes`, whichever comes first (both are reported).

Usage: python bench/bench_vlm_learning.py [--vision mambavision] [--epochs 3] [--budget-minutes 13] [--bf16] [--quick]
       [--caption-repeats 2] [--output bench/results/bench_vlm_learning_<vision>.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import THREADS, machine, write_json
from mamba_multimodal.training.recipes import EASY_VQA_VISION_TOWERS, easy_vqa_vlm, vqa_training_set


class TimeBudget:
    """A TrainerCallback that stops training once `seconds` have passed."""

    def __init__(self, seconds: float):
        from transformers import TrainerCallback

        budget = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                budget.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if time.perf_counter() - budget.start > seconds:
                    budget.stopped_early = True
                    control.should_training_stop = True

        self.callback, self.start, self.stopped_early = _Callback(), None, False


def train_stage(model, processor, rows, epochs: float, seconds: float, args) -> dict:
    """One Trainer run over `rows` for `epochs` or `seconds`, whichever ends first (its own cosine schedule)."""
    from transformers import Trainer, TrainingArguments

    from mamba_multimodal import VLMambaDataCollator

    budget = TimeBudget(seconds)
    with tempfile.TemporaryDirectory() as output_dir:
        training_arguments = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=args.batch_size, num_train_epochs=epochs,
            learning_rate=args.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0,
            logging_steps=50, save_strategy="no", report_to="none", use_cpu=True, bf16=args.bf16,
            dataloader_num_workers=0, remove_unused_columns=False, seed=0, disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=training_arguments, train_dataset=rows,
            data_collator=VLMambaDataCollator(processor), callbacks=[budget.callback],
        )  # fmt: skip
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "train_seconds": seconds, "steps": trainer.state.global_step, "epochs": trainer.state.epoch,
        "stopped_by_budget": budget.stopped_early, "final_train_loss": losses[-1] if losses else result.training_loss,
        "loss_curve": losses,
    }  # fmt: skip


def train(model, processor, descriptions, rows, args) -> dict:
    """Stage 1 (alignment, LLaVA's first stage): the image descriptions alone for `--align-epochs`; stage 2: the
    questions with the descriptions mixed in, for `--epochs` or the rest of `--budget-minutes`."""
    budget = args.budget_minutes * 60
    stages = {}
    if args.align_epochs:
        stages["align"] = train_stage(model, processor, descriptions, args.align_epochs, budget, args)
        budget -= stages["align"]["train_seconds"]
    stages["vqa"] = train_stage(model, processor, rows, args.epochs, budget, args)
    return {
        "train_seconds": sum(stage["train_seconds"] for stage in stages.values()),
        "steps": sum(stage["steps"] for stage in stages.values()),
        "epochs": stages["vqa"]["epochs"], "stopped_by_budget": stages["vqa"]["stopped_by_budget"], "stages": stages,
    }  # fmt: skip


def evaluate(model, processor, test_split, batch_size: int = 256) -> dict:
    """Greedy answers for every test question, scored with the official VQA accuracy; the answers' wall time."""
    import torch

    from mamba_multimodal.processing.processing_vlm_mamba import vqa_prompt
    from mamba_multimodal.training.metrics import vqa_accuracy

    model.eval()
    predictions, answers = [], []
    start = time.perf_counter()
    for first in range(0, len(test_split), batch_size):
        rows = test_split[first : first + batch_size]
        inputs = processor(
            images=rows["image"], text=[vqa_prompt(q) for q in rows["question"]], padding=True, return_tensors="pt"
        )
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        predictions += [text.strip() for text in processor.batch_decode(generated, input_ids=inputs["input_ids"])]
        answers += rows["answers"]
    seconds = time.perf_counter() - start
    accuracy, per_question = vqa_accuracy(predictions, answers, return_per_question=True)
    by_type = {}
    for kind in sorted(set(test_split["question_type"])):
        scores = [s for s, t in zip(per_question, test_split["question_type"], strict=True) if t == kind]
        by_type[kind] = sum(scores) / len(scores)
    examples = [{"question": q, "prediction": p, "truth": a[0]} for q, p, a in
                zip(test_split["question"][:8], predictions[:8], answers[:8], strict=True)]  # fmt: skip
    return {"vqa_accuracy": accuracy, "by_question_type": by_type, "eval_seconds": seconds,
            "questions": len(predictions), "examples": examples}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vision", choices=sorted(EASY_VQA_VISION_TOWERS), default="mambavision")
    parser.add_argument(
        "--align-epochs",
        type=float,
        default=12.0,
        help="stage 1: epochs over the 3,542 image descriptions alone (0: no alignment stage)",
    )
    parser.add_argument("--epochs", type=float, default=2.0, help="stage 2: epochs over the questions")
    parser.add_argument("--budget-minutes", type=float, default=13.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument(
        "--caption-repeats",
        type=int,
        default=2,
        help="times each train image's description joins the training set per epoch (0: VQA only)",
    )
    # bf16 autocast made this small model's step 5.5x slower on this CPU (1.75 s → 9.8 s at batch 64): opt-in only.
    parser.add_argument("--bf16", action="store_true", help="train under bf16 autocast (default: float32)")
    parser.add_argument("--quick", action="store_true", help="2,000 train and 500 test questions (a smoke run)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    import torch

    from mamba_multimodal.training.data import load_easy_vqa
    from mamba_multimodal.training.data.easy_vqa import load_easy_vqa_captions

    torch.set_num_threads(THREADS)
    data = load_easy_vqa()
    train_split, test_split = data["train"], data["test"]
    captions = load_easy_vqa_captions(("train",))["train"]
    if args.quick:
        train_split, test_split = train_split.select(range(2000)), test_split.select(range(500))
        captions = captions.select(range(200))
    train_split = vqa_training_set(train_split, captions, args.caption_repeats)
    torch.manual_seed(0)
    model, processor = easy_vqa_vlm(args.vision)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"easy-VQA: {len(train_split)} train / {len(test_split)} test questions; {args.vision} tower; "
          f"{parameters / 1e6:.2f} M parameters; bf16 autocast: {args.bf16}")  # fmt: skip
    before = evaluate(model, processor, test_split.select(range(min(500, len(test_split)))))
    trained = train(model, processor, captions, train_split, args)
    after = evaluate(model, processor, test_split)
    load = os.getloadavg()[0]
    print(f"\n(b) VLM-Mamba from scratch on easy-VQA, {args.vision} tower, 2 threads, 1-minute load {load:.2f}")
    header = ["vision", "params (M)", "train (min)", "steps", "epochs", "test VQA acc.", "before (500 q.)"]
    header += ["yes/no", "shape", "color", "answer time (s)"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    types = after["by_question_type"]
    print(f"| {args.vision} | {parameters / 1e6:.2f} | {trained['train_seconds'] / 60:.1f} | {trained['steps']} | "
          f"{trained['epochs']:.2f} | {100 * after['vqa_accuracy']:.2f}% | {100 * before['vqa_accuracy']:.1f}% | "
          + " | ".join(f"{100 * types.get(k, float('nan')):.1f}%" for k in ("yes/no", "shape", "color"))
          + f" | {after['eval_seconds']:.0f} |")  # fmt: skip
    for example in after["examples"]:
        print(f"  Q: {example['question']}  →  {example['prediction']!r}  (truth {example['truth']!r})")
    output = args.output or f"bench/results/bench_vlm_learning_{args.vision}{'_quick' if args.quick else ''}.json"
    report = {"machine": machine(), "load_average_1min": load, "vision": args.vision, "parameters": parameters,
              "arguments": vars(args), "before": before, "training": trained, "after": after}  # fmt: skip
    print(f"wrote {write_json(report, Path(output))}")


if __name__ == "__main__":
    main()
