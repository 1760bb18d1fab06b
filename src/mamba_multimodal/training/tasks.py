"""The tasks of `mamba-multimodal train` / `evaluate`: per task, its model, its data and its metric.

A `TaskRun` holds what the command line needs: the model and its processor, the train / eval datasets, the collator,
Trainer's `compute_metrics` (classifiers) and `score(model)`, the final metric table. Embedded data (no download):
`digits` (scikit-learn's 8x8 handwritten digits, upscaled) and `easy-vqa` (the easy-vqa package).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch

from ..registry import tasks
from .cli import UsageError
from .data import load_coco_captions, load_easy_vqa, load_vqa_v2
from .data.easy_vqa import easy_vqa_answers, load_easy_vqa_captions

EMBEDDED = {
    "image-classification": "digits",
    "caption": "easy-vqa",
    "vqa": "easy-vqa",
    "image-text-classification": "easy-vqa",
}
# Each task's recipes, as TrainingArguments fields over COMMON_TRAINING (sentiment: over train_sentiment's defaults):
# `cpu`, the default, sized for a laptop CPU; `paper` where a paper states one (RECIPE_NOTES names paper and table).
# `global_batch_size` (not a TrainingArguments field) is split over the processes and accumulation steps.
_MAMBAVISION_EPOCHS, _MAMBAVISION_WARMUP_EPOCHS = 310, 20  # 300 + 10 cooldown; 20 warmup (T, T2, S)
# Cobra (arXiv 2403.14520, Table 1 and its Cobra_3B config): its one stage, projector + language model.
_COBRA = {
    "num_train_epochs": 2,
    "global_batch_size": 128,
    "learning_rate": 2e-5,
    "weight_decay": 0.1,
    "warmup_steps": 0.03,  # a ratio: below 1, TrainingArguments reads warmup_steps as a fraction of the steps
    "lr_scheduler_type": "cosine",
    "optim": "adamw_torch",
}
RECIPES = {
    "image-classification": {
        # ~30 s on 1 CPU thread: 1,437 digits x 3 epochs, 1.5 M parameters.
        "cpu": {"num_train_epochs": 3, "per_device_train_batch_size": 32, "learning_rate": 2e-3},
        # MambaVision's ImageNet recipe (mambavision/configs/*.yaml, T / T2 / S). transformers' Trainer has no LAMB
        # (TrainingArguments.optim names none, nor does torch): AdamW stands in, as LAMB is Adam(W)'s update scaled per
        # layer by the trust ratio ||w|| / ||update||. The paper's lr 5e-3 is kept as stated, though without the trust
        # ratio it is a larger step. Not in TrainingArguments, so left out: EMA 0.9998, MESA, RandAugment, mixup,
        # cutmix; AMP is --bf16 (on a GPU: on this CPU bf16 is slower).
        "paper": {
            "optim": "adamw_torch",
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 128,
            "num_train_epochs": _MAMBAVISION_EPOCHS,
            "lr_scheduler_type": "cosine",  # over all 310 epochs: Trainer's cosine has no separate cooldown
            "warmup_steps": _MAMBAVISION_WARMUP_EPOCHS / _MAMBAVISION_EPOCHS,
            "weight_decay": 0.05,  # T / T2 / S; the paper's B uses 0.075, L / L2 0.12 (--weight-decay)
            "max_grad_norm": 5.0,
            "label_smoothing_factor": 0.1,
        },
    },
    # The paper's own numbers are train_sentiment's defaults (150 epochs, batch 1024 on MOSEI, lr 5e-4, wd 5e-4).
    "sentiment": {"cpu": {"num_train_epochs": 10, "per_device_train_batch_size": 64}, "paper": {}},
    # easy-VQA, the two stages of bench/bench_vlm_learning.py (98.4% VQA accuracy in 13 min on 2 threads): caption,
    # 12 epochs of the 3,542 descriptions (3.5 min); then vqa from that model, 2 epochs of the questions with the
    # descriptions mixed in (9.5 min).
    "caption": {
        "cpu": {"num_train_epochs": 12, "per_device_train_batch_size": 64, "learning_rate": 2e-3},
        "paper": _COBRA,
    },
    "vqa": {"cpu": {"num_train_epochs": 2, "per_device_train_batch_size": 64, "learning_rate": 2e-3}, "paper": _COBRA},
    # No paper states a recipe for VLM-Mamba's image + text classifier.
    "image-text-classification": {
        "cpu": {"num_train_epochs": 1, "per_device_train_batch_size": 64, "learning_rate": 2e-3}
    },
}
# What each recipe is, for --help and the setup block.
_COBRA_NOTE = (
    "Cobra's one training stage (arXiv 2403.14520; Cobra has no alignment stage): 2 epochs, global batch 128, AdamW "
    "lr 2e-5, weight decay 0.1, warmup ratio 0.03, cosine; Cobra's pretrained vision encoder stays frozen, here the "
    "tower trains too; add --bf16 on a GPU for its BF16 AMP"
)
RECIPE_NOTES = {
    "image-classification": {
        "cpu": "3 epochs, batch 32, AdamW lr 2e-3, cosine (the digits: about 30 s on 1 CPU thread)",
        "paper": "MambaVision's ImageNet recipe (arXiv 2407.08083, configs of T / T2 / S): 310 epochs, batch 128 per "
        "device, lr 5e-3, cosine with 20 warmup epochs, weight decay 0.05, gradient clipping 5, label smoothing 0.1; "
        "AdamW instead of LAMB (transformers has none); no EMA, MESA, RandAugment, mixup or cutmix",
    },
    "sentiment": {
        "cpu": "10 epochs, batch 64, AdamW lr 5e-4 (constant), weight decay 5e-4, the checkpoint with the best "
        "validation MAE",
        "paper": "Coupled Mamba's (arXiv 2405.18014): 150 epochs, batch 1024 on MOSEI (SIMS 128, SIMS v2 256; MOSI "
        "128, not stated), lr 5e-4, weight decay 5e-4, the best validation MAE; AdamW and a constant lr where the "
        "released code has Adam and StepLR",
    },
    "caption": {
        "cpu": "stage 1 of the easy-VQA recipe: 12 epochs of image descriptions, batch 64, AdamW lr 2e-3, cosine "
        "(about 3.5 min on 2 CPU threads)",
        "paper": _COBRA_NOTE,
    },
    "vqa": {
        "cpu": "stage 2 of the easy-VQA recipe: 2 epochs of the questions with the image descriptions mixed in, batch "
        "64, AdamW lr 2e-3, cosine (about 9.5 min on 2 CPU threads)",
        "paper": _COBRA_NOTE,
    },
    "image-text-classification": {"cpu": "1 epoch of easy-VQA's 13 answers as classes, batch 64, AdamW lr 2e-3"},
}
if {task: set(recipes) for task, recipes in RECIPES.items()} != {t: set(n) for t, n in RECIPE_NOTES.items()}:
    raise ImportError("every recipe needs its note in RECIPE_NOTES")
COMMON_TRAINING = {
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.03,
    "weight_decay": 0.01,
    "logging_steps": 10,
    "eval_strategy": "epoch",
    "save_strategy": "no",
    "remove_unused_columns": False,
    "per_device_eval_batch_size": 64,
    "seed": 0,
}


@dataclass
class ModelArguments:
    model: str | None = field(
        default=None,
        metadata={
            "help": "a Hub id or a local folder to start from; `tiny` for a tiny fresh model (tests, smoke "
            "runs); default: a small fresh model sized for a CPU"
        },
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "config fields to change, `key=value,key=value` (values read as JSON)"}
    )
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (the family's preset, lora_config_for)"})


@dataclass
class DataArguments:
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "image-classification: `digits` (default), an imagefolder folder or a Hub id; caption: "
            "`easy-vqa` (default), COCO files or a Hub id; vqa / image-text-classification: "
            "`easy-vqa` (default), VQA v2 files or a Hub id; sentiment: an MMSA / MulT pickle, a "
            "folder holding one, or a Hub id (required)"
        },
    )
    recipe: str = field(
        default="cpu",
        metadata={
            "help": "`cpu` (default: sized for a CPU: minutes on the embedded data; sentiment on CMU-MOSEI over an "
            "hour) or `paper` (the paper's, sized for GPUs). The estimated duration after the first steps says what "
            "either costs here. image-classification paper: MambaVision's ImageNet recipe (310 "
            "epochs, batch 128, lr 5e-3, cosine, 20 warmup epochs, wd 0.05, clip 5, label smoothing 0.1; AdamW, as "
            "transformers has no LAMB). sentiment paper: Coupled Mamba's (150 epochs, batch 1024 on MOSEI, lr 5e-4, "
            "wd 5e-4). caption / vqa paper: Cobra's one stage (2 epochs, global batch 128, AdamW lr 2e-5, wd 0.1, "
            "warmup ratio 0.03, cosine). image-text-classification: cpu only. Any option given explicitly wins "
            "over the recipe's",
            "choices": ["cpu", "paper"],
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training examples"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use only the first N evaluation examples"})
    max_new_tokens: int = field(default=8, metadata={"help": "caption / vqa: tokens generated per answer"})
    sentiment_dataset: str = field(
        default="mosei", metadata={"help": "sentiment: mosi, mosei, sims or simsv2 (metrics, paper batch size)"}
    )
    sentiment_mode: str = field(default="regression", metadata={"help": "sentiment: regression or classification"})
    sentiment_unaligned: bool = field(
        default=False,
        metadata={
            "help": "sentiment: read the unaligned pickle (MMSA's unaligned_50.pkl, SIMS' unaligned_39.pkl) and "
            "resample every modality to 50 steps (train); evaluate uses the resampling the model was saved with"
        },
    )


@dataclass
class TaskRun:
    model: torch.nn.Module
    processor: object
    train: datasets.Dataset | None
    eval: datasets.Dataset | None
    collator: object = None
    compute_metrics: object = None
    data_name: str = ""


# ------------------------------------------------------------------------------------------------ arguments
def looks_like_path(value: str) -> bool:
    """A local path rather than a Hub id ("owner/name" or "name")."""
    return value.startswith((".", "/", "~")) or value.count("/") > 1 or value.endswith("/") or os.sep + os.sep in value


def check_local(argument: str, value: str | None) -> None:
    """A path-looking value that does not exist is a mistake, reported before anything touches the Hub."""
    if value is not None and looks_like_path(value) and not Path(value).expanduser().exists():
        raise UsageError(f"{argument}: no such file or folder: {value}")


def parse_overrides(text: str | None) -> dict:
    """`key=value,key=value` → {key: value}; values as JSON where they parse (numbers, lists, true), else strings."""
    overrides = {}
    for item in filter(None, (part.strip() for part in re.split(r",(?=\s*[\w.]+=)", text or ""))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--config-overrides: expected key=value, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def _field_names(fields: dict) -> list[str]:
    """Top-level fields and, for sub-configs (dicts), `sub.field`."""
    names = list(fields)
    for name, value in fields.items():
        if isinstance(value, dict) and name.endswith("_config"):
            names += [f"{name}.{key}" for key in value]
    return names


def check_override_keys(overrides: dict, fields: dict, owner: str) -> None:
    names = _field_names(fields)
    for key in overrides:
        if key not in names:
            leaf_matches = [name for name in names if name.rpartition(".")[2] == key]
            close = leaf_matches or difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            close = close or difflib.get_close_matches(key, [n.rpartition(".")[2] for n in names], n=3, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise UsageError(f"--config-overrides: {key!r} is not a field of {owner}{hint}")


def apply_overrides(config, text: str | None):
    """`config` with `--config-overrides` applied (`text_config.hidden_size=64` reaches a sub-config), validated by
    the config class itself."""
    overrides = parse_overrides(text)
    if not overrides:
        return config
    fields = config.to_dict()
    check_override_keys(overrides, fields, type(config).__name__)
    for key, value in overrides.items():
        parent, _, leaf = key.rpartition(".")
        (fields[parent] if parent else fields)[leaf] = value
    try:
        return type(config).from_dict(fields)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--config-overrides: {error}") from None


def _from_hub(argument: str, value: str, load):
    try:
        return load()
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{argument}: cannot load {value!r} ({first})") from None


def _take(split, count: int | None):
    return split if split is None or count is None else split.select(range(min(count, len(split))))


# ------------------------------------------------------------------------------------------------ images
def _digits() -> datasets.DatasetDict:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels) as 64x64 RGB images: 80 % train, 20 % test."""
    import PIL.Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [
        PIL.Image.fromarray((image * 15).astype(np.uint8)).resize((64, 64), PIL.Image.NEAREST).convert("RGB")
        for image in digits.images
    ]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list("0123456789"))})
    dataset = datasets.Dataset.from_dict({"image": images, "label": list(digits.target)}, features=features)
    return dataset.train_test_split(test_size=0.2, seed=0)


def _image_dataset(source: str) -> datasets.DatasetDict:
    if source == "digits":
        return _digits()
    if Path(source).is_dir():
        return _from_hub("--dataset", source, lambda: datasets.load_dataset("imagefolder", data_dir=source))
    return _from_hub("--dataset", source, lambda: datasets.load_dataset(source))


def _columns(split: datasets.Dataset, source: str) -> tuple[str, str]:
    image = next((n for n, f in split.features.items() if isinstance(f, datasets.Image)), None)
    label = next((n for n, f in split.features.items() if isinstance(f, datasets.ClassLabel)), None)
    if image is None or label is None:
        raise UsageError(f"--dataset: {source!r} needs an Image and a ClassLabel column, has {split.column_names}")
    return image, label


def _train_and_eval(splits: datasets.DatasetDict, source: str) -> tuple[datasets.Dataset, datasets.Dataset]:
    if "train" not in splits:
        raise UsageError(f"--dataset: {source!r} has no train split (splits: {', '.join(splits)})")
    evaluation = next((splits[name] for name in ("validation", "test") if name in splits), None)
    if evaluation is None:
        parts = splits["train"].train_test_split(test_size=0.1, seed=0)
        return parts["train"], parts["test"]
    return splits["train"], evaluation


def _accuracy(prediction) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def image_classification(model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    from transformers import AutoConfig
    from transformers.models.auto.image_processing_auto import AutoImageProcessor  # 5.17: not the top-level one

    from ..configuration.configuration_mambavision import MambaVisionConfig
    from ..modeling.modeling_mambavision import MambaVisionForImageClassification
    from ..processing.image_processing_mambavision import MambaVisionImageProcessor

    source = data_args.dataset or "digits"
    train, evaluation = _train_and_eval(_image_dataset(source), source)
    image_column, label_column = _columns(train, source)
    names = train.features[label_column].names
    labels = {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}
    if model_args.model in (None, "tiny"):
        from .recipes import EASY_VQA_VISION_TOWERS

        # The narrow MambaVision of the VLM recipe: 1.5 M parameters with a 10-class head, minutes on a CPU.
        preset = {k: v for k, v in EASY_VQA_VISION_TOWERS["mambavision"].items() if k != "model_type"}
        config = (
            MambaVisionConfig.from_preset("mambavision-tiny-test", **labels)
            if model_args.model == "tiny"
            else MambaVisionConfig(**preset, **labels)
        )
        config = apply_overrides(config, model_args.config_overrides)
        model, processor = (
            MambaVisionForImageClassification(config),
            MambaVisionImageProcessor.from_model_config(config),
        )
    else:
        name = model_args.model
        config = _from_hub("--model", name, lambda: AutoConfig.from_pretrained(name))
        if not evaluate_only:
            config = apply_overrides(config, model_args.config_overrides)
            config.update(labels)
        model = _from_hub(
            "--model",
            name,
            lambda: MambaVisionForImageClassification.from_pretrained(
                name, config=config, ignore_mismatched_sizes=not evaluate_only
            ),
        )
        processor = _from_hub("--model", name, lambda: AutoImageProcessor.from_pretrained(name))

    def collate(rows):
        batch = processor([row[image_column].convert("RGB") for row in rows], return_tensors="pt")
        batch["labels"] = torch.tensor([row[label_column] for row in rows])
        return batch

    return TaskRun(
        model,
        processor,
        _take(train, data_args.max_train_samples),
        _take(evaluation, data_args.max_eval_samples),
        collate,
        _accuracy,
        source,
    )


# ------------------------------------------------------------------------------------------------ VLM-Mamba
def _fresh_vlm(task: str, tiny: bool, overrides: str | None, num_labels: int | None, id2label=None):
    """A fresh VLM-Mamba: the easy-VQA recipe of `training.recipes` (or its tiny variant), with the overrides."""
    from ..processing.processing_vlm_mamba import bundled_tokenizer
    from .recipes import easy_vqa_vlm_config, vlm_and_processor

    tokenizer = bundled_tokenizer()
    labels = {} if num_labels is None else {"num_labels": num_labels, "id2label": id2label}
    config = easy_vqa_vlm_config("tiny" if tiny else "mambavision", tokenizer, **labels)
    config = apply_overrides(config, overrides)
    return vlm_and_processor(config, tasks()[task].tasks[task], tokenizer)


def _pretrained_vlm(task: str, model_args, evaluate_only: bool):
    from transformers import AutoConfig

    from ..processing.processing_vlm_mamba import VLMambaProcessor

    name = model_args.model
    config = _from_hub("--model", name, lambda: AutoConfig.from_pretrained(name))
    if not evaluate_only:
        config = apply_overrides(config, model_args.config_overrides)
    model_class = tasks()[task].tasks[task]
    model = _from_hub("--model", name, lambda: model_class.from_pretrained(name, config=config))
    return model, _from_hub("--model", name, lambda: VLMambaProcessor.from_pretrained(name))


def _vlm_data(task: str, source: str, with_descriptions: bool = False) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, eval) splits; with_descriptions: easy-VQA's training questions with the image descriptions mixed in
    (`recipes.vqa_training_set`), for generative VQA."""
    if source == "easy-vqa" and with_descriptions:
        from .recipes import vqa_training_set

        splits = load_easy_vqa()
        return vqa_training_set(splits["train"], load_easy_vqa_captions(("train",))["train"]), splits["test"]
    if source == "easy-vqa":
        splits = load_easy_vqa_captions() if task == "caption" else load_easy_vqa()
        return splits["train"], splits["test"]
    if task == "caption":
        splits = _from_hub("--dataset", source, lambda: load_coco_captions(source))
    else:
        splits = _from_hub("--dataset", source, lambda: load_vqa_v2(source))
    return _train_and_eval(splits, source)


def _generative_run(task, model_args, data_args, evaluate_only) -> TaskRun:
    from ..processing.processing_vlm_mamba import VLMambaDataCollator

    source = data_args.dataset or "easy-vqa"
    train, evaluation = _vlm_data(task, source, with_descriptions=task == "vqa")
    if model_args.model in (None, "tiny"):
        model, processor = _fresh_vlm(task, model_args.model == "tiny", model_args.config_overrides, None)
    else:
        model, processor = _pretrained_vlm(task, model_args, evaluate_only)
    return TaskRun(
        model,
        processor,
        _take(train, data_args.max_train_samples),
        _take(evaluation, data_args.max_eval_samples),
        VLMambaDataCollator(processor),
        None,
        source,
    )


def caption(model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    return _generative_run("caption", model_args, data_args, evaluate_only)


def vqa(model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    return _generative_run("vqa", model_args, data_args, evaluate_only)


def image_text_classification(model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    source = data_args.dataset or "easy-vqa"
    train, evaluation = _vlm_data("vqa", source)
    answers = easy_vqa_answers() if source == "easy-vqa" else sorted(set(train["multiple_choice_answer"]))
    index = {answer: i for i, answer in enumerate(answers)}
    task = "image-text-classification"
    if model_args.model in (None, "tiny"):
        model, processor = _fresh_vlm(
            task, model_args.model == "tiny", model_args.config_overrides, len(answers), dict(enumerate(answers))
        )
    else:
        model, processor = _pretrained_vlm(task, model_args, evaluate_only)
        index = {answer: int(i) for i, answer in model.config.id2label.items()} if evaluate_only else index
    keep = lambda split: split.filter(lambda row: row["multiple_choice_answer"] in index)  # noqa: E731

    def collate(rows):
        text = processor.tokenizer([row["question"] for row in rows], padding=True, return_tensors="pt")
        images = processor.image_processor([row["image"].convert("RGB") for row in rows], return_tensors="pt")
        labels = torch.tensor([index[row["multiple_choice_answer"]] for row in rows])
        return {**text, "pixel_values": images["pixel_values"], "labels": labels}

    return TaskRun(
        model,
        processor,
        _take(keep(train), data_args.max_train_samples),
        _take(keep(evaluation), data_args.max_eval_samples),
        collate,
        _accuracy,
        source,
    )


# ------------------------------------------------------------------------------------------------ scoring
@torch.no_grad()
def generate_answers(model, processor, split, prompts: list[str], max_new_tokens: int, batch_size: int = 64):
    model.eval()
    answers = []
    for first in range(0, len(split), batch_size):
        rows = split[first : first + batch_size]
        images = [image.convert("RGB") for image in rows["image"]]
        inputs = processor(images=images, text=prompts[first : first + batch_size], padding=True, return_tensors="pt")
        inputs = inputs.to(model.device)
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers += [text.strip() for text in processor.batch_decode(generated, input_ids=inputs["input_ids"])]
    return answers


def vqa_metrics(predictions: list[str], split: datasets.Dataset) -> dict[str, float]:
    """The official VQA accuracy of `predictions` on `split` ("answers"), and per question type where the split has
    one (easy-VQA's `question_type`: yes/no, shape, color; else VQA v2's `answer_type`): "VQA accuracy (shape)"."""
    from .metrics import vqa_accuracy

    accuracy, per_question = vqa_accuracy(predictions, split["answers"], return_per_question=True)
    metrics = {"VQA accuracy": float(accuracy)}
    column = next((name for name in ("question_type", "answer_type") if name in split.column_names), None)
    if column is not None:
        kinds = split[column]
        for kind in sorted(set(kinds)):
            scores = [score for score, other in zip(per_question, kinds, strict=True) if other == kind]
            metrics[f"VQA accuracy ({kind})"] = float(sum(scores) / len(scores))
    return metrics


def score(task: str, run: TaskRun, trainer, data_args) -> dict[str, float]:
    """The task's metric table on `run.eval`."""
    from ..processing.processing_vlm_mamba import caption_prompt, vqa_prompt
    from .metrics import caption_metrics

    model, split = trainer.model, run.eval
    if task == "vqa":
        prompts = [vqa_prompt(question) for question in split["question"]]
        predictions = generate_answers(model, run.processor, split, prompts, data_args.max_new_tokens)
        return vqa_metrics(predictions, split)
    if task == "caption":
        predictions = generate_answers(
            model, run.processor, split, [caption_prompt()] * len(split), data_args.max_new_tokens
        )
        references = split["captions"] if "captions" in split.column_names else [[c] for c in split["caption"]]
        keys = split["image_id"] if "image_id" in split.column_names else list(range(len(split)))
        grouped_predictions, grouped_references = {}, {}
        for key, prediction, reference in zip(keys, predictions, references, strict=True):
            grouped_predictions.setdefault(key, prediction or "-")
            grouped_references.setdefault(key, []).extend(reference)
        return caption_metrics(grouped_predictions, grouped_references)
    metrics = trainer.evaluate(split)
    return {"accuracy": metrics["eval_accuracy"], "eval loss": metrics["eval_loss"]}


TASK_BUILDERS = {
    "image-classification": image_classification,
    "caption": caption,
    "vqa": vqa,
    "image-text-classification": image_text_classification,
}
FAMILY_NAMES = {name: family.name for name, family in tasks().items()}
if set(FAMILY_NAMES) != set(TASK_BUILDERS) | {"sentiment"}:
    raise ImportError(f"every registry task needs a builder here: {sorted(FAMILY_NAMES)} vs {sorted(TASK_BUILDERS)}")

__all__ = [
    "EMBEDDED",
    "RECIPES",
    "RECIPE_NOTES",
    "TASK_BUILDERS",
    "DataArguments",
    "ModelArguments",
    "TaskRun",
    "UsageError",
    "apply_overrides",
    "check_local",
    "score",
    "vqa_metrics",
]
