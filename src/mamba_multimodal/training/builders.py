"""Builders and scorers of the image and vision-language tasks (`tasks.TASKS` names them): per task, its model and
processor, its data and collator, and its final metric table. Embedded data (no download): `digits`
(scikit-learn's 8x8 handwritten digits, upscaled) and `easy-vqa` (the easy-vqa package).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import torch

from .arguments import TaskRun, UsageError, apply_overrides, check_model_type, loaded
from .data import load_coco_captions, load_easy_vqa, load_vqa_v2
from .data.easy_vqa import easy_vqa_answers, load_easy_vqa_captions

HELD_OUT = "held-out 10% of the train"  # the eval split of data with neither a validation nor a test split


def _run(model, processor, train, evaluation, data_args, collator, compute_metrics, source, eval_split) -> TaskRun:
    """The TaskRun with --max-train-samples / --max-eval-samples applied; `eval_split` names the split `evaluation`
    is."""

    def take(split, count):
        return split if count is None or split is None else split.select(range(min(count, len(split))))

    rows = len(evaluation)
    train, evaluation = take(train, data_args.max_train_samples), take(evaluation, data_args.max_eval_samples)
    return TaskRun(model, processor, train, evaluation, collator, compute_metrics, source, eval_split=eval_split,
                   eval_rows=rows)  # fmt: skip


def _saved(model_class, processor_class, model_args, evaluate_only: bool, labels: dict | None = None):
    """(model, processor) saved in --model; to train, its config takes --config-overrides and `labels` (a new head:
    the data's labels, not the checkpoint's)."""
    from transformers import AutoConfig

    name = model_args.model
    config = loaded("--model", name, lambda: AutoConfig.from_pretrained(name))
    expected = model_class.config_class.model_type
    if not isinstance(config, model_class.config_class):  # a Hub id's (flow.parse checks a local folder's)
        check_model_type("--model", name, getattr(config, "model_type", None), model_class.__name__, expected)
    if not evaluate_only:
        config = apply_overrides(config, model_args.config_overrides)
        config.update(labels or {})
    new_head = labels is not None and not evaluate_only
    load = lambda: model_class.from_pretrained(name, config=config, ignore_mismatched_sizes=new_head)  # noqa: E731
    return loaded("--model", name, load), loaded("--model", name, lambda: processor_class.from_pretrained(name))


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
        if not any(path.is_dir() for path in Path(source).iterdir()):  # imagefolder would find images, no labels
            raise UsageError(
                f"--dataset: {source} has no class subfolders (an image folder holds one subfolder of images per "
                "class, named after it: cat/1.png, dog/2.png)"
            )
        return loaded("--dataset", source, lambda: datasets.load_dataset("imagefolder", data_dir=source))
    return loaded("--dataset", source, lambda: datasets.load_dataset(source))


def _columns(split: datasets.Dataset, source: str) -> tuple[str, str]:
    image = next((n for n, f in split.features.items() if isinstance(f, datasets.Image)), None)
    label = next((n for n, f in split.features.items() if isinstance(f, datasets.ClassLabel)), None)
    if image is None or label is None:
        raise UsageError(f"--dataset: {source!r} needs an Image and a ClassLabel column, has {split.column_names}")
    return image, label


def _train_and_eval(splits: datasets.DatasetDict, source: str) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    """(train, eval, the eval split's name): the validation split, else the test split, else 10% of train."""
    if "train" not in splits:
        raise UsageError(f"--dataset: {source!r} has no train split (splits: {', '.join(splits)})")
    name = next((name for name in ("validation", "test") if name in splits), None)
    if name is None:
        parts = splits["train"].train_test_split(test_size=0.1, seed=0)
        return parts["train"], parts["test"], HELD_OUT
    return splits["train"], splits[name], name


def _accuracy(prediction) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def image_classification(task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    from transformers.models.auto.image_processing_auto import AutoImageProcessor  # 5.17: not the top-level one

    from ..configuration.configuration_mambavision import MambaVisionConfig
    from ..processing.image_processing_mambavision import MambaVisionImageProcessor

    model_class = task.load("model_class")
    source = data_args.dataset or task.default_dataset
    splits = _image_dataset(source)
    if evaluate_only and {"validation", "test"} & set(splits):  # the split it scores, no train split needed
        name = next(name for name in ("validation", "test") if name in splits)
        train, evaluation = None, splits[name]
    else:
        train, evaluation, name = _train_and_eval(splits, source)
    image_column, label_column = _columns(evaluation, source)
    names = evaluation.features[label_column].names
    labels = {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}
    if model_args.model in (None, "tiny"):
        from .recipes import EASY_VQA_VISION_TOWERS

        # The narrow MambaVision of the VLM recipe: 1.5 M parameters with a 10-class head, minutes on a CPU.
        preset = {k: v for k, v in EASY_VQA_VISION_TOWERS["mambavision"].items() if k != "model_type"}
        tiny = model_args.model == "tiny"
        config = MambaVisionConfig.from_preset("mambavision-tiny-test", **labels) if tiny else None
        config = apply_overrides(config or MambaVisionConfig(**preset, **labels), model_args.config_overrides)
        model, processor = model_class(config), MambaVisionImageProcessor.from_model_config(config)
    else:
        model, processor = _saved(model_class, AutoImageProcessor, model_args, evaluate_only, labels)

    def collate(rows):
        batch = processor([row[image_column].convert("RGB") for row in rows], return_tensors="pt")
        batch["labels"] = torch.tensor([row[label_column] for row in rows])
        return batch

    return _run(model, processor, train, evaluation, data_args, collate, _accuracy, source, name)


# ------------------------------------------------------------------------------------------------ VLM-Mamba
def _vlm(task, model_args, evaluate_only: bool, answers: list[str] | None = None):
    """(model, processor): a fresh VLM-Mamba (the easy-VQA recipe of `training.recipes` or its tiny variant, with the
    overrides; `answers` as the classifier's labels), or the one in --model."""
    model_class = task.load("model_class")
    if model_args.model in (None, "tiny"):
        from ..processing.processing_vlm_mamba import bundled_tokenizer
        from .recipes import easy_vqa_vlm_config, vlm_and_processor

        tokenizer = bundled_tokenizer()
        labels = {} if answers is None else {"num_labels": len(answers), "id2label": dict(enumerate(answers))}
        config = easy_vqa_vlm_config("tiny" if model_args.model == "tiny" else "mambavision", tokenizer, **labels)
        config = apply_overrides(config, model_args.config_overrides)
        return vlm_and_processor(config, model_class, tokenizer)
    from ..processing.processing_vlm_mamba import VLMambaProcessor

    return _saved(model_class, VLMambaProcessor, model_args, evaluate_only)


def _vlm_data(
    task: str, source: str, with_descriptions: bool = False
) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    """(train, eval, the eval split's name); with_descriptions: easy-VQA's training questions with the image
    descriptions mixed in (`recipes.vqa_training_set`), for generative VQA."""
    if source == "easy-vqa" and with_descriptions:
        from .recipes import vqa_training_set

        splits = load_easy_vqa()
        return vqa_training_set(splits["train"], load_easy_vqa_captions(("train",))["train"]), splits["test"], "test"
    if source == "easy-vqa":
        splits = load_easy_vqa_captions() if task == "caption" else load_easy_vqa()
        return splits["train"], splits["test"], "test"
    load = load_coco_captions if task == "caption" else load_vqa_v2
    return _train_and_eval(loaded("--dataset", source, lambda: load(source)), source)


def _scored_split(task: str, source: str) -> tuple[datasets.Dataset, str]:
    """The split `evaluate` scores, the one training evaluates on, read without the others where the data allows:
    easy-VQA's test split; of official VQA v2 / COCO files, the validation split (val2014) where present, else the
    test split (for VQA v2 the train split alone is 443,757 questions, and each image's file is checked). A Hub dataset
    is read whole; data with neither split: its eval split is carved from the train split, which is then read too.
    Returns (the split, its name)."""
    if source == "easy-vqa":
        return (load_easy_vqa_captions(("test",)) if task == "caption" else load_easy_vqa(("test",)))["test"], "test"
    for name in ("validation", "test"):  # `_train_and_eval`'s order
        splits = loaded("--dataset", source, lambda name=name: _official_split(task, source, name))
        if splits is not None:  # a Hub dataset: read whole
            return (splits[name], name) if name in splits else _train_and_eval(splits, source)[1:]
    return _vlm_data(task, source)[1:]


def _official_split(task: str, source: str, name: str) -> datasets.DatasetDict | None:
    """{name: the split} from official COCO / VQA v2 files, None when they lack it; a Hub dataset whole."""
    try:
        if task == "caption":
            return load_coco_captions(source, splits=(name,))
        return load_vqa_v2(source, splits=({"validation": "val2014", "test": "test2015"}[name],))
    except FileNotFoundError:
        return None


def vlm_mamba(task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    """caption and vqa (generative: the eval loss is tracked, the scorer generates), image-text-classification (the
    answers as classes)."""
    from ..processing.processing_vlm_mamba import VLMambaDataCollator

    source = data_args.dataset or task.default_dataset
    data = "caption" if task.name == "caption" else "vqa"
    if evaluate_only:  # only the split it scores (evaluate loads a trained --model: the answers are its labels)
        train, (evaluation, name) = None, _scored_split(data, source)
    else:
        train, evaluation, name = _vlm_data(data, source, with_descriptions=task.name == "vqa")
    if task.name != "image-text-classification":
        model, processor = _vlm(task, model_args, evaluate_only)
        collator = VLMambaDataCollator(processor)
        return _run(model, processor, train, evaluation, data_args, collator, None, source, name)
    if evaluate_only:
        model, processor = _vlm(task, model_args, evaluate_only)
        index = {answer: int(i) for i, answer in model.config.id2label.items()}
    else:
        answers = easy_vqa_answers() if source == "easy-vqa" else sorted(set(train["multiple_choice_answer"]))
        model, processor = _vlm(task, model_args, evaluate_only, answers)
        index = {answer: i for i, answer in enumerate(answers)}
    train, evaluation = (
        None if split is None else split.filter(lambda row: row["multiple_choice_answer"] in index)
        for split in (train, evaluation)
    )

    def collate(rows):
        text = processor.tokenizer([row["question"] for row in rows], padding=True, return_tensors="pt")
        images = processor.image_processor([row["image"].convert("RGB") for row in rows], return_tensors="pt")
        labels = torch.tensor([index[row["multiple_choice_answer"]] for row in rows])
        return {**text, "pixel_values": images["pixel_values"], "labels": labels}

    return _run(model, processor, train, evaluation, data_args, collate, _accuracy, source, name)


# ------------------------------------------------------------------------------------------------ scorers
def accuracy(run: TaskRun, trainer, data_args) -> dict[str, float]:
    metrics = trainer.evaluate(run.eval)
    return {"accuracy": metrics["eval_accuracy"], "eval loss": metrics["eval_loss"]}


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


def vqa_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """The VQA accuracy of the answers generated with --prompt-style's prompts (`prompts.PROMPTS`)."""
    from .prompts import benchmark_prompts, prompt_style

    prompts = benchmark_prompts(run.processor, "vqa", prompt_style("vqa", data_args), run.eval["question"])
    batch_size = trainer.args.per_device_eval_batch_size
    predictions = generate_answers(
        trainer.model, run.processor, run.eval, prompts, data_args.max_new_tokens, batch_size
    )
    return vqa_metrics(predictions, run.eval)


def caption_score(run: TaskRun, trainer, data_args) -> dict[str, float]:
    """COCO's caption metrics, the references grouped by image."""
    from ..processing.processing_vlm_mamba import caption_prompt
    from .metrics import caption_metrics

    split = run.eval
    prompts = [caption_prompt()] * len(split)
    predictions = generate_answers(trainer.model, run.processor, split, prompts, data_args.max_new_tokens)
    references = split["captions"] if "captions" in split.column_names else [[c] for c in split["caption"]]
    keys = split["image_id"] if "image_id" in split.column_names else list(range(len(split)))
    grouped_predictions, grouped_references = {}, {}
    for key, prediction, reference in zip(keys, predictions, references, strict=True):
        grouped_predictions.setdefault(key, prediction or "-")
        grouped_references.setdefault(key, []).extend(reference)
    return caption_metrics(grouped_predictions, grouped_references)


__all__ = ["generate_answers", "image_classification", "vlm_mamba", "vqa_metrics"]
