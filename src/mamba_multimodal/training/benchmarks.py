"""The benchmarks beside VQA v2 that LLaVA-1.5 and Cobra report, as the evaluation-only tasks `mamba-multimodal
evaluate gqa|textvqa|pope --model FOLDER --dataset PATH`: their builder (the saved VLM, the benchmark's evaluation
split) and scorers (batched greedy generation with `prompts.PROMPTS`, the reference metrics, a per-category table).
"""

from __future__ import annotations

import datasets
import numpy as np

from .arguments import TaskRun, UsageError, loaded
from .prompts import benchmark_prompts, prompt_style

# eval.py's names of GQA's semantic types.
GQA_SEMANTIC_NAMES = {"attr": "attribute", "cat": "category", "global": "scene", "obj": "object", "rel": "relation"}


# ------------------------------------------------------------------------------------------------ the tasks
_SPLITS = {"gqa": ("testdev", "validation"), "textvqa": ("validation", "train", "test"), "pope": ("test",)}


def _benchmark_split(task: str, source: str) -> tuple[str, datasets.Dataset]:
    from .data import load_gqa, load_pope, load_textvqa

    load = {"gqa": load_gqa, "textvqa": load_textvqa, "pope": load_pope}[task]
    splits = loaded("--dataset", source, lambda: load(source))
    name = next((name for name in _SPLITS[task] if name in splits), None)
    if name is None:
        wanted = " or ".join(_SPLITS[task])
        raise UsageError(f"--dataset: {source!r} has no {wanted} split (splits: {', '.join(splits)})")
    return name, splits[name]


def benchmark(task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    """gqa, textvqa, pope: the trained VLM in --model and the benchmark's evaluation split (evaluation only)."""
    from ..processing.processing_vlm_mamba import VLMambaProcessor
    from .builders import _saved

    if not evaluate_only:
        raise UsageError(f"{task.name} is a benchmark, evaluation only: mamba-multimodal evaluate {task.name} --model "
                         "FOLDER --dataset PATH")  # fmt: skip
    style = prompt_style(task.name, data_args)
    name, split = _benchmark_split(task.name, data_args.dataset)
    rows = len(split)
    if data_args.max_eval_samples is not None:
        split = split.select(range(min(data_args.max_eval_samples, len(split))))
    model, processor = _saved(task.load("model_class"), VLMambaProcessor, model_args, evaluate_only=True)
    return TaskRun(model, processor, None, split, data_name=data_args.dataset, details=f"{name}, prompts {style}",
                   eval_split=name, eval_rows=rows)  # fmt: skip


def _predictions(task: str, run: TaskRun, trainer, data_args) -> list[str]:
    from .builders import generate_answers

    split = run.eval
    ocr = split["ocr_tokens"] if task == "textvqa" and "ocr_tokens" in split.column_names else None
    prompts = benchmark_prompts(run.processor, task, prompt_style(task, data_args), split["question"], ocr)
    return generate_answers(trainer.model, run.processor, split, prompts, data_args.max_new_tokens,
                            batch_size=trainer.args.per_device_eval_batch_size)  # fmt: skip


def _per_category(name: str, scores: list[float], categories: list[str], names: dict | None = None) -> dict:
    """{"name (category)": mean score of its questions} per category, sorted."""
    categories, scores, names = np.asarray(categories), np.asarray(scores), names or {}
    return {f"{name} ({names.get(category, category)})": float(np.mean(scores[categories == category]))
            for category in sorted(set(categories))}  # fmt: skip


def gqa_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """GQA accuracy (LLaVA's conversion + eval.py's exact match), then as eval.py breaks it down: binary / open, per
    structural type and per semantic type."""
    from .metrics import gqa_accuracy
    from .metrics.benchmarks import GQA_OPEN_TYPE

    predictions = _predictions("gqa", run, trainer, data_args)
    accuracy, scores = gqa_accuracy(predictions, run.eval["answer"], return_per_question=True)
    metrics = {"GQA accuracy": float(accuracy)}
    if "structural_type" in run.eval.column_names:
        structural = run.eval["structural_type"]
        kinds = ["open" if kind == GQA_OPEN_TYPE else "binary" for kind in structural]
        metrics.update(_per_category("GQA accuracy", scores, kinds))
        metrics.update(_per_category("GQA accuracy", scores, structural))
        metrics.update(_per_category("GQA accuracy", scores, run.eval["semantic_type"], GQA_SEMANTIC_NAMES))
    return metrics


def textvqa_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """The VQA accuracy with TextVQA's answer processing (m4c_evaluator.py)."""
    from .metrics import vqa_accuracy

    predictions = _predictions("textvqa", run, trainer, data_args)
    return {"TextVQA accuracy": float(vqa_accuracy(predictions, run.eval["answers"], normalization="textvqa"))}


def pope_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """eval_pope.py's metrics per category (file), and F1 and accuracy averaged over the categories (LLaVA-1.5's
    table quotes the averaged F1)."""
    from .metrics import pope_metrics

    predictions = np.asarray(_predictions("pope", run, trainer, data_args), dtype=object)
    labels = np.asarray(run.eval["answer"], dtype=object)
    categories = np.asarray(run.eval["category"] if "category" in run.eval.column_names else ["all"] * len(labels))
    per_category = {category: pope_metrics(list(predictions[categories == category]),
                                           list(labels[categories == category]))
                    for category in sorted(set(categories))}  # fmt: skip
    mean = lambda name: float(np.mean([values[name] for values in per_category.values()]))  # noqa: E731
    metrics = {"POPE F1 (mean over categories)": mean("f1"), "POPE accuracy (mean over categories)": mean("accuracy")}
    for category, values in per_category.items():
        metrics.update({f"POPE {name} ({category})": value for name, value in values.items()})
    return metrics


__all__ = ["GQA_SEMANTIC_NAMES", "benchmark", "gqa_score", "pope_score", "textvqa_score"]
