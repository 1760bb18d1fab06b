"""Coupled Mamba on multimodal sentiment data (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2) with transformers' Trainer.

    from mamba_multimodal.training import load_mmsa, train_sentiment

    splits = load_mmsa("MOSEI/Processed")                       # aligned_50.pkl: train / validation / test
    test_metrics = train_sentiment(splits, "runs/mosei", dataset="mosei")

or from the shell: `mamba-multimodal train-sentiment MOSEI/Processed runs/mosei --dataset mosei`.

Defaults are the paper's (Sec. 4.1, `reference/coupled_mamba_mosei.md` A1.8): lr 5e-4, weight decay 5e-4, 150 epochs,
batch 1024 on MOSEI (128 on SIMS, 256 on SIMS v2; 128 on MOSI, which the paper does not state), L1 loss for the
score, and the checkpoint with the best validation MAE (regression; validation loss for classification), as the
released code selects. Departures: AdamW (decoupled weight decay) instead of Adam's L2 penalty, and a constant
learning rate instead of the released code's StepLR(50, 0.5); pass `training_arguments` to change either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets

from ..configuration.configuration_coupled_mamba import CoupledMambaConfig
from ..file_utils import staged_into
from ..modeling.modeling_coupled_mamba import CoupledMambaForSequenceClassification
from ..processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from .metrics import CLASS_NAMES, DATASETS, MODES, sentiment_compute_metrics

PAPER_BATCH_SIZES = {"mosei": 1024, "mosi": 128, "sims": 128, "simsv2": 256}
MODALITIES = ("text", "audio", "vision")


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def feature_sizes(split: datasets.Dataset) -> dict[str, int]:
    """{modality: feature size} read from a `load_mmsa` / `load_mult` split's schema (List(List(float32, D)))."""
    sizes = {}
    for modality in MODALITIES:
        column = f"{modality}_features"
        if column not in split.features:
            raise ValueError(f"the dataset has no {column!r} column; load it with load_mmsa or load_mult")
        frame = split.features[column].feature
        size = getattr(frame, "length", -1)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"{column} must be a list of fixed-length frames (List(float32, length=D)), got {frame}")
        sizes[modality] = size
    return sizes


def prepare_sentiment_splits(splits: datasets.DatasetDict, mode: str = "regression") -> datasets.DatasetDict:
    """The model's columns only, as numpy: `{m}_features` and `labels` (the sentiment score for regression,
    MMSA's 3 classes negative / neutral / positive for classification)."""
    _check_choice("mode", mode, MODES)
    missing = [name for name in ("train", "validation", "test") if name not in splits]
    if missing:
        raise ValueError(f"splits must hold train, validation and test, missing {missing}")
    label_column = "label" if mode == "regression" else "label_class"
    if label_column not in splits["train"].column_names:
        raise ValueError(f"{mode} needs the {label_column!r} column, which this dataset does not have")
    keep = [f"{m}_features" for m in MODALITIES] + [label_column]
    prepared = datasets.DatasetDict()
    for name, split in splits.items():
        feature_sizes(split)  # every modality present, as fixed-size frames
        split = split.select_columns(keep).rename_column(label_column, "labels")
        prepared[name] = split.with_format("numpy")
    return prepared


def build_sentiment_model(
    sizes: dict[str, int], mode: str = "regression", **config_overrides
) -> CoupledMambaForSequenceClassification:
    """A freshly initialised classifier for these feature sizes: one score (regression) or MMSA's 3 classes."""
    _check_choice("mode", mode, MODES)
    labels = {"num_labels": 1} if mode == "regression" else {"id2label": dict(enumerate(CLASS_NAMES))}
    problem = "regression" if mode == "regression" else "single_label_classification"
    config = CoupledMambaConfig(input_sizes=dict(sizes), problem_type=problem, **labels, **config_overrides)
    return CoupledMambaForSequenceClassification(config)


def default_training_arguments(output_dir, dataset: str, mode: str) -> dict:
    """The paper's optimisation settings as `TrainingArguments` keywords (see the module docstring)."""
    regression = mode == "regression"
    return {
        "output_dir": str(output_dir),
        "learning_rate": 5e-4,
        "weight_decay": 5e-4,
        "num_train_epochs": 150,
        "per_device_train_batch_size": PAPER_BATCH_SIZES[dataset],
        "per_device_eval_batch_size": PAPER_BATCH_SIZES[dataset],
        "lr_scheduler_type": "constant",
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "MAE" if regression else "loss",
        "greater_is_better": False,
        "logging_strategy": "epoch",
        "report_to": "none",
        "seed": 202,  # the released code's
    }


def train_sentiment(
    splits: datasets.DatasetDict,
    output_dir: str | os.PathLike,
    *,
    dataset: str = "mosei",
    mode: str = "regression",
    sequence_length: int | None = None,
    config_overrides: dict | None = None,
    training_arguments: dict | None = None,
) -> dict[str, float]:
    """Trains Coupled Mamba on `splits` (from `load_mmsa` / `load_mult`), keeps the best checkpoint on the validation
    split, and evaluates it on the test split with MMSA's metrics for `dataset` and `mode`.

    Args:
        sequence_length: None for word-aligned data; T to resample unaligned data to T steps
            (`CoupledMambaFeatureProcessor`).
        config_overrides: `CoupledMambaConfig` fields (coupling, hidden_size, ...).
        training_arguments: `TrainingArguments` fields over `default_training_arguments`. Their `seed` (default 202)
            decides the initial weights as well as the data order: two runs with the same seed train the same model.
    Returns:
        The test metrics ("test_MAE", "test_Non0_acc_2", ...). `output_dir` receives the model, its processor and
        `test_results.json`, moved there only once everything is written; the checkpoints (`MambaTrainer`'s: no weight
        decay on A_log, D, norms and biases; renamed into place once complete) go to `output_dir/checkpoint-*`.
    """
    from transformers import TrainingArguments, enable_full_determinism, set_seed

    from .trainer import MambaTrainer

    _check_choice("dataset", dataset, DATASETS)
    prepared = prepare_sentiment_splits(splits, mode)
    arguments = {**default_training_arguments(output_dir, dataset, mode), **(training_arguments or {})}
    args = TrainingArguments(**arguments)
    # Trainer seeds only once it holds the model: seeded here, the seed decides the initial weights too.
    if args.full_determinism:
        enable_full_determinism(args.seed)
    else:
        set_seed(args.seed)
    model = build_sentiment_model(feature_sizes(splits["train"]), mode, **(config_overrides or {}))
    processor = CoupledMambaFeatureProcessor.from_model_config(model.config, sequence_length=sequence_length)
    trainer = MambaTrainer(
        model=model,
        args=args,
        train_dataset=prepared["train"],
        eval_dataset=prepared["validation"],
        data_collator=processor,
        compute_metrics=sentiment_compute_metrics(dataset, mode),
    )
    trainer.train()
    test_metrics = trainer.evaluate(prepared["test"], metric_key_prefix="test")
    with staged_into(output_dir) as staging:
        trainer.model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (Path(staging) / "test_results.json").write_text(json.dumps(test_metrics, indent=2))
    return test_metrics


__all__ = [
    "PAPER_BATCH_SIZES",
    "build_sentiment_model",
    "default_training_arguments",
    "feature_sizes",
    "prepare_sentiment_splits",
    "train_sentiment",
]
