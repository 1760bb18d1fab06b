"""Coupled Mamba on multimodal sentiment data (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2) with transformers' Trainer.

    from mamba_multimodal.training import load_mmsa, train_sentiment

    splits = load_mmsa("MOSEI/Processed")                       # aligned_50.pkl: train / validation / test
    test_metrics = train_sentiment(splits, "runs/mosei", dataset="mosei")

or from the shell: `mamba-multimodal train sentiment --dataset MOSEI/Processed --output-dir runs/mosei`; then
`mamba-multimodal evaluate sentiment --model runs/mosei --dataset MOSEI/Processed` (`evaluate_sentiment`).

Defaults are the paper's (arXiv 2405.18014, Sec. 4.1 "Implementation details"): lr 5e-4, weight decay 5e-4, 150 epochs,
batch 1024 on MOSEI (128 on SIMS, 256 on SIMS v2; 128 on MOSI, which the paper does not state), L1 loss for the
score, and the checkpoint with the best validation MAE (regression; validation loss for classification), as the
released code selects. Departures: AdamW (decoupled weight decay) instead of Adam's L2 penalty, and a constant
learning rate instead of the released code's StepLR(50, 0.5); pass `training_arguments` to change either.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import datasets

from ..configuration.configuration_coupled_mamba import CoupledMambaConfig
from ..file_utils import staged_into
from ..hub import write_model_card
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
    return datasets.DatasetDict({name: _model_columns(split, mode) for name, split in splits.items()})


def _model_columns(split: datasets.Dataset, mode: str) -> datasets.Dataset:
    label_column = "label" if mode == "regression" else "label_class"
    if label_column not in split.column_names:
        raise ValueError(f"{mode} needs the {label_column!r} column, which this dataset does not have")
    feature_sizes(split)  # every modality present, as fixed-size frames
    keep = [f"{m}_features" for m in MODALITIES] + [label_column]
    return split.select_columns(keep).rename_column(label_column, "labels").with_format("numpy")


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
    callbacks: list | None = None,
) -> dict[str, float]:
    """Trains Coupled Mamba on `splits` (from `load_mmsa` / `load_mult`), keeps the best checkpoint on the validation
    split, and evaluates it on the test split with MMSA's metrics for `dataset` and `mode`.

    Args:
        sequence_length: None for word-aligned data; T to resample unaligned data to T steps
            (`CoupledMambaFeatureProcessor`).
        config_overrides: `CoupledMambaConfig` fields (coupling, hidden_size, ...).
        training_arguments: `TrainingArguments` fields over `default_training_arguments`. Their `seed` (default 202)
            decides the initial weights as well as the data order: two runs with the same seed train the same model.
        callbacks: `TrainerCallback`s for the trainer (the command line's setup block and duration estimate).
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
        callbacks=callbacks,
    )
    trainer.train()
    test_metrics = trainer.evaluate(prepared["test"], metric_key_prefix="test")
    with staged_into(output_dir) as staging:
        trainer.model.save_pretrained(staging, processor=processor)
        write_model_card(staging, trainer.model, **_card_details(trainer, dataset, mode, len(prepared["train"]),
                                                                 test_metrics))  # fmt: skip
        (Path(staging) / "test_results.json").write_text(json.dumps(test_metrics, indent=2))
    return test_metrics


def _card_details(trainer, dataset: str, mode: str, train_size: int, test_metrics: dict) -> dict:
    """The model card's account of a sentiment run: MMSA's test metrics (timings left out) and the recipe."""
    args = trainer.args
    metrics = {name.removeprefix("test_"): value for name, value in test_metrics.items()
               if isinstance(value, (int, float)) and not name.endswith(("_runtime", "_per_second"))}  # fmt: skip
    training = {"command": "mamba-multimodal train sentiment", "mode": mode, "data": f"{dataset}: {train_size} clips",
                "optimizer steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 2),
                "learning rate": args.learning_rate, "batch size per device": args.per_device_train_batch_size,
                "checkpoint": "the best validation MAE", "seed": args.seed}  # fmt: skip
    name = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI", "sims": "CH-SIMS", "simsv2": "CH-SIMS v2"}.get(dataset, dataset)
    return {"task": "sentiment", "metrics": metrics, "dataset_name": f"{name} (test split)", "training": training}


def sentiment_config(path) -> CoupledMambaConfig:
    """The config saved in `path` (a folder or a Hub id), read before any weight is loaded.

    Raises:
        ValueError: `path` holds another kind of model (its model_type is named).
        OSError: no config.json there (transformers' message).
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    if not isinstance(config, CoupledMambaConfig):
        raise ValueError(
            f"{path} holds a {config.model_type!r} model, not a Coupled Mamba (model_type 'coupled_mamba', saved by "
            "train sentiment)"
        )
    return config


def load_sentiment_model(
    path, config: CoupledMambaConfig | None = None
) -> tuple[CoupledMambaForSequenceClassification, CoupledMambaFeatureProcessor]:
    """The classifier (in eval mode) and feature processor that `train_sentiment` saved in `path`; `config` is
    `sentiment_config(path)` when not given (same errors)."""
    config = sentiment_config(path) if config is None else config
    model = CoupledMambaForSequenceClassification.from_pretrained(path, config=config).eval()
    return model, CoupledMambaFeatureProcessor.from_pretrained(path)


def head_mode(config: CoupledMambaConfig, mode: str | None = None) -> str:
    """The mode the model's head was trained for: "regression" (1 output) or "classification" (MMSA's 3 classes).

    Raises:
        ValueError: `mode` is given and is not the head's, or the head is neither.
    """
    outputs = config.num_labels
    trained = {1: "regression", len(CLASS_NAMES): "classification"}.get(outputs)
    if trained is None:
        raise ValueError(f"the model's head has {outputs} outputs; sentiment heads have 1 (regression) or 3 classes")
    if mode is not None:
        _check_choice("mode", mode, MODES)
        if mode != trained:
            raise ValueError(
                f"{mode} does not fit this model: its head has {outputs} output(s), it was trained for {trained}"
            )
    return trained


def check_feature_sizes(config: CoupledMambaConfig, split: datasets.Dataset) -> None:
    """Raises ValueError when the split's per-modality feature sizes are not those the model was trained on."""
    expected = dict(zip(config.modalities, config.input_sizes, strict=True))
    found = feature_sizes(split)
    if found != expected:
        raise ValueError(f"the data's feature sizes {found} are not the model's {expected} (other features or dataset)")


def evaluate_sentiment(
    model: CoupledMambaForSequenceClassification,
    processor: CoupledMambaFeatureProcessor,
    splits: datasets.DatasetDict,
    *,
    dataset: str = "mosei",
    mode: str | None = None,
    split_names: tuple[str, ...] = ("test", "validation"),
    training_arguments: dict | None = None,
) -> dict[str, float]:
    """MMSA's metrics (`sentiment_metrics` for `dataset`) of a trained model on each split in `split_names`, batched
    through its processor by `MambaTrainer.evaluate`.

    Args:
        model, processor: from `load_sentiment_model`.
        splits: from `load_mmsa` / `load_mult`.
        mode: None takes the head's (`head_mode`); a mode the head was not trained for raises.
        training_arguments: `TrainingArguments` fields for the evaluation (default batch 64, no reporting).
    Returns:
        {"{split}_{metric}": value}, split by split: "test_MAE", "test_Non0_acc_2", ..., "test_loss", then the
        same for "validation" (Trainer's runtime entries included).
    Raises:
        ValueError: dataset or mode unknown, mode not the head's, a split missing, feature sizes not the model's.
    """
    from transformers import TrainingArguments

    from .trainer import MambaTrainer

    _check_choice("dataset", dataset, DATASETS)
    mode = head_mode(model.config, mode)
    missing = [name for name in split_names if name not in splits]
    if missing:
        raise ValueError(f"splits has no {missing} (it has {list(splits)})")
    for name in split_names:
        check_feature_sizes(model.config, splits[name])
    metrics = {}
    with tempfile.TemporaryDirectory() as scratch:  # Trainer wants an output folder; evaluation writes nothing
        arguments = {"per_device_eval_batch_size": 64, "report_to": "none", **(training_arguments or {})}
        trainer = MambaTrainer(
            model=model,
            args=TrainingArguments(**{**arguments, "output_dir": scratch}),
            data_collator=processor,
            compute_metrics=sentiment_compute_metrics(dataset, mode),
        )
        for name in split_names:
            metrics.update(trainer.evaluate(_model_columns(splits[name], mode), metric_key_prefix=name))
    return metrics


__all__ = [
    "PAPER_BATCH_SIZES",
    "build_sentiment_model",
    "check_feature_sizes",
    "default_training_arguments",
    "evaluate_sentiment",
    "feature_sizes",
    "head_mode",
    "load_sentiment_model",
    "prepare_sentiment_splits",
    "sentiment_config",
    "train_sentiment",
]
