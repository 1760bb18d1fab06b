"""The benchmarks LLaVA-1.5 and Cobra report, as `mamba-multimodal evaluate gqa|textvqa|pope` (and `evaluate vqa`):
the prompts each evaluation used, recorded once (`PROMPTS`), the builder of the evaluation-only tasks and their scorers.

A prompt here is the text of the user turn; the model's chat template (the processor's) wraps it around the image, as
LLaVA's conversation template and Cobra's prompt builder wrap theirs. `--prompt-style` picks the column of `PROMPTS`:
    llava-1.5  LLaVA-1.5's question files (`scripts/v1_5/eval/*.sh` read llava_vqav2_mscoco_test-dev2015.jsonl,
               llava_gqa_testdev_balanced.jsonl, llava_textvqa_val_v051_ocr.jsonl, llava_pope_test.jsonl; lmms-eval's
               gqa / pope / textvqa tasks use the same text), the image as "<image>\\n" before it.
    cobra      Cobra's (TRI-ML vlm-evaluation `models/prismatic.py` get_vqa_chat_prompt_fn for vqa-v2, gqa, pope and
               text-vqa: "\\n{question}\\n" + the short-answer line, which Cobra's ZephyrChatPromptBuilder strips; the
               image is a prefix of patches). Same text as LLaVA-1.5's but for TextVQA, where Cobra's paper reports
               its 58.2 with the OCR tokens before the question ("OCR First"; 43.0 with them last); that order is the
               one LLaVA's eval_textvqa.py also parses ("Reference OCR token: ...\\n{question}\\n...").
    question   the question alone: the format the easy-VQA recipes train on (the default chat template renders it
               "<image>Question: {question} Answer:", exactly `processing_vlm_mamba.vqa_prompt`).
Without OCR tokens (no Rosetta OCR file) the TextVQA prompt drops its OCR line, as vlm-evaluation's no-OCR variant.
Generation is greedy, `--max-new-tokens` per answer (LLaVA: temperature 0), batched by --per-device-eval-batch-size.
"""

from __future__ import annotations

import datasets
import numpy as np

from .arguments import TaskRun, UsageError, loaded

SHORT_ANSWER = "Answer the question using a single word or phrase."
_OCR_LINE = "Reference OCR token: {ocr}\n"
_SHORT = "{question}\n" + SHORT_ANSWER
PROMPTS = {
    "llava-1.5": {"vqa": _SHORT, "gqa": _SHORT, "pope": _SHORT, "textvqa": "{question}\n" + _OCR_LINE + SHORT_ANSWER},
    "cobra": {"vqa": _SHORT, "gqa": _SHORT, "pope": _SHORT, "textvqa": _OCR_LINE + _SHORT},
    "question": {"vqa": "{question}", "gqa": "{question}", "pope": "{question}", "textvqa": "{question}"},
}
PROMPT_STYLES = tuple(PROMPTS)
# The style without --prompt-style: vqa keeps what it scored before (its recipes train on the question alone).
DEFAULT_STYLES = {"vqa": "question", "gqa": "llava-1.5", "textvqa": "llava-1.5", "pope": "llava-1.5"}
# eval.py's names of GQA's semantic types.
GQA_SEMANTIC_NAMES = {"attr": "attribute", "cat": "category", "global": "scene", "obj": "object", "rel": "relation"}


def prompt_style(task: str, data_args) -> str:
    style = getattr(data_args, "prompt_style", None) or DEFAULT_STYLES[task]
    if style not in PROMPTS:
        raise UsageError(f"--prompt-style: one of {', '.join(PROMPT_STYLES)}, not {style!r}")
    return style


def benchmark_texts(task: str, style: str, questions: list[str], ocr_tokens: list[list[str]] | None = None):
    """The user-turn texts of `task` ("vqa", "gqa", "textvqa", "pope") in `style` (a column of `PROMPTS`)."""
    template = PROMPTS[style][task]
    ocr_tokens = ocr_tokens or [[] for _ in questions]
    return [
        (template if tokens else template.replace(_OCR_LINE, "")).format(question=question, ocr=", ".join(tokens))
        for question, tokens in zip(questions, ocr_tokens, strict=True)
    ]


def benchmark_prompts(processor, task: str, style: str, questions: list[str], ocr_tokens=None) -> list[str]:
    """The full prompts: each user turn (an image, then `benchmark_texts`) through the processor's chat template."""
    texts = benchmark_texts(task, style, questions, ocr_tokens)
    conversations = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
                     for text in texts]  # fmt: skip
    if not conversations:
        return []
    return processor.apply_chat_template(conversations, tokenize=False, add_generation_prompt=True)


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
    if data_args.max_eval_samples is not None:
        split = split.select(range(min(data_args.max_eval_samples, len(split))))
    model, processor = _saved(task.load("model_class"), VLMambaProcessor, model_args, evaluate_only=True)
    return TaskRun(model, processor, None, split, data_name=data_args.dataset, details=f"{name}, prompts {style}")


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


__all__ = ["DEFAULT_STYLES", "PROMPTS", "PROMPT_STYLES", "benchmark", "benchmark_prompts", "benchmark_texts",
           "gqa_score", "pope_score", "textvqa_score"]  # fmt: skip
