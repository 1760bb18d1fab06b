"""The model card (`README.md`) of a saved folder, as a `huggingface_hub.ModelCard`: metadata from the family's entry
in the registry (pipeline tag, licence, summary), usage with and without the package, training and evaluation."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .._version import __version__
from ..file_utils import final_name, staged_into
from ..registry import Family, family_of
from .hub_id import as_hub_id

EVAL_RESULTS = ".eval_results"  # huggingface_hub.constants.EVAL_RESULTS_FOLDER (2.4+)
SNIPPET_MODEL_ID = re.compile(r'^model_id = ".*"$', flags=re.MULTILINE)  # the line push_folder points at the repo
# The card's pipeline snippet for each pipeline tag that has one.
PIPELINE_CALLS = {
    "image-classification": (
        'classify = pipeline("image-classification", model=model_id, trust_remote_code=True)\nclassify("image.png")'
    ),
    "image-text-to-text": (
        'answer = pipeline("image-text-to-text", model=model_id, trust_remote_code=True)\n'
        'chat = [{"role": "user", "content": [{"type": "image", "url": "image.png"}, '
        '{"type": "text", "text": "What shape is in the image?"}]}]\n'
        "answer(text=chat, max_new_tokens=8)"
    ),
}


def _auto_class_of(model, family: Family) -> str:
    suffix = f".{type(model).__name__}"
    return next((auto for auto, path in family.model_names.items() if path.endswith(suffix)), "AutoModel")


def model_card(
    model,
    *,
    model_id: str | None = None,
    task: str | None = None,
    datasets: list[str] | tuple[str, ...] = (),
    metrics: dict[str, float] | None = None,
    dataset_name: str | None = None,
    training: dict | None = None,
    base_model: str | None = None,
    evaluated_on: str | None = None,
    dataset_split: str | None = None,
):
    """The model card of a model of this package, as a `huggingface_hub.ModelCard`.

    Args:
        model: the saved model (its class and config describe it).
        model_id: the repo id or folder the usage snippets load (default: "path/to/this/folder").
        task: the training task (`mamba-multimodal train TASK`), for the metadata and the evaluation entry.
        datasets: Hub dataset ids it was trained on (the metadata's `datasets`).
        metrics: {metric name: value} measured on `dataset_name`'s evaluation split (the card's `model-index`).
        training: {setting: value} of the recipe that trained it (a table in the card).
        base_model: the Hub id it was fine-tuned from (default: the config's `_name_or_path` when it is a Hub id).
        evaluated_on: what the metrics were measured on, "1,000 of 9,673 questions of the test split of easy-vqa".
        dataset_split: the split the metrics were measured on (`model-index`'s dataset split).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    family = family_of(model)
    auto_class = _auto_class_of(model, family)
    pipeline_tag = family.pipeline_tag(auto_class)
    base_model = base_model or as_hub_id(getattr(model.config, "_name_or_path", None))
    name = Path(model_id).name if model_id else type(model).__name__
    evaluations = [
        EvalResult(task_type=task or pipeline_tag or "other", dataset_type=dataset_name or "custom",
                   dataset_name=dataset_name or "evaluation set", dataset_split=dataset_split,
                   metric_type=metric_slug(metric), metric_name=metric, metric_value=float(value))
        for metric, value in (metrics or {}).items() if isinstance(value, (int, float))
    ]  # fmt: skip
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=sorted({"mamba_multimodal", "mamba", family.model_type, "custom_code", *([task] if task else [])}),
        datasets=list(datasets) or None,
        base_model=base_model,
        model_name=name if evaluations else None,
        eval_results=evaluations or None,
        **family.license_for(base_model),
    )
    body = _card_body(model, family, auto_class, pipeline_tag, model_id or "path/to/this/folder", metrics, training,
                      evaluated_on)  # fmt: skip
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _card_body(model, family, auto_class, pipeline_tag, model_id, metrics, training, evaluated_on=None) -> str:
    parameters = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())  # ZeRO-3: p is a 0-size part
    loading = f"""model_id = "{model_id}"
model = {auto_class}.from_pretrained(model_id{{}})"""
    sections = [
        f"# {Path(model_id).name}",
        f"{family.summary}\n\n`{type(model).__name__}` ({family.model_type}), {parameters / 1e6:.2f} M parameters, "
        f"saved by mamba_multimodal {__version__}.",
        "## Usage",
        "With `pip install mamba-multimodal` (the fast CPU kernel, LoRA presets, training and evaluation CLI):",
        f"```python\nimport mamba_multimodal  # registers the model type with transformers\n"
        f"from transformers import {auto_class}\n\n{loading.format('')}\n```",
        "Without it: the folder carries its own code (generated from mamba_multimodal's source; it needs only "
        "torch and transformers, and a C++ compiler for the fast CPU kernel, else it runs in plain PyTorch):",
        f"```python\nfrom transformers import {auto_class}\n\n{loading.format(', trust_remote_code=True')}\n```",
    ]
    if pipeline_tag in PIPELINE_CALLS:
        call = PIPELINE_CALLS[pipeline_tag]
        sections.append(f"As a pipeline:\n\n```python\nfrom transformers import pipeline\n\n{call}\n```")
    if training:
        sections += ["## Training", _table(training, "setting", "{:.4g}")]
    if metrics:
        sections += ["## Evaluation", *([f"Measured on {evaluated_on}."] if evaluated_on else []),
                     _table(metrics, "metric", "{:.4f}")]  # fmt: skip
    return "\n\n".join(sections) + "\n"


def _table(values: dict, heading: str, float_format: str) -> str:
    rows = [f"| {heading} | value |", "|---|---|"]
    for key, value in values.items():
        rows.append(f"| {key} | {float_format.format(value) if isinstance(value, float) else value} |")
    return "\n".join(rows)


def metric_slug(metric: str) -> str:
    """ "VQA accuracy (shape)" → "vqa_accuracy_shape": a metric's name as an id (model-index, .eval_results)."""
    return re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_")


def eval_results(metrics: dict, dataset: str, split: str | None, command: str | None, date: str) -> list[dict]:
    """The entries of a `.eval_results/*.yaml` file (huggingface_hub 2.4's format, `parse_eval_result_entries`; the
    model page and the benchmark leaderboards read them): one per metric, `dataset.id` the Hub dataset (or the data's
    name), `dataset.task_id` the metric, `notes` the metric's name, split and the command that measured it."""
    entries = []
    for metric, value in metrics.items():
        if not isinstance(value, (int, float)):
            continue
        notes = "; ".join([metric, *([f"{split} split"] if split else []), *([command] if command else [])])
        entries.append({"dataset": {"id": dataset, "task_id": metric_slug(metric)}, "value": float(value),
                        "date": date, "notes": notes})  # fmt: skip
    return entries


def write_model_card(
    folder: str | os.PathLike, model, eval_dataset: str | None = None, command: str | None = None, **details
) -> Path:
    """Writes `model_card(model, model_id=<folder name>, **details)` as `folder/README.md` (atomically); a staging
    folder of `staged_into` is named after its target. With `metrics`, also `folder/.eval_results/<dataset>.yaml`
    (`eval_results`: the Hub reads these; `model-index` in the card is its older format), `eval_dataset` its
    dataset id (default: the first of `datasets`, else `dataset_name`), `command` what measured them."""
    import datetime

    import yaml

    folder = Path(folder)
    card = model_card(model, **{"model_id": final_name(folder), **details})
    with staged_into(folder) as staging:
        card.save(staging / "README.md")
        dataset = eval_dataset or (details.get("datasets") or [None])[0] or details.get("dataset_name") or "evaluation"
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = eval_results(details.get("metrics") or {}, dataset, details.get("dataset_split"),
                               command, date)  # fmt: skip
        if entries:
            (staging / EVAL_RESULTS).mkdir()
            path = staging / EVAL_RESULTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', dataset)}.yaml"
            path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True))
    return folder / "README.md"


def add_card_tags(folder: str | os.PathLike, tags: list[str]) -> None:
    """Adds `tags` to the metadata of `folder/README.md`."""
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    card = ModelCard.load(path)
    card.data.tags = sorted({*(card.data.tags or []), *tags})
    with staged_into(path.parent) as staging:
        card.save(staging / "README.md")


__all__ = ["EVAL_RESULTS", "SNIPPET_MODEL_ID", "add_card_tags", "eval_results", "metric_slug", "model_card",
           "write_model_card"]  # fmt: skip
