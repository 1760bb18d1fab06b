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

import tempfile

import datasets

from ..configuration.configuration_coupled_mamba import CoupledMambaConfig
from ..modeling.modeling_coupled_mamba import CoupledMambaForSequenceClassification
from ..processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from .arguments import TaskRun, UsageError, check_override_keys, loaded, parse_overrides
from .data import load_mmsa, load_mult
from .metrics import CLASS_NAMES, DATASETS, MODES, sentiment_compute_metrics

PAPER_BATCH_SIZES = {"mosei": 1024, "mosi": 128, "sims": 128, "simsv2": 256}
DATASET_NAMES = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI", "sims": "CH-SIMS", "simsv2": "CH-SIMS v2"}
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
    _check_choice("dataset", dataset, DATASETS)
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


def evaluate_sentiment(model: CoupledMambaForSequenceClassification, processor: CoupledMambaFeatureProcessor,
                       splits: datasets.DatasetDict, *, dataset: str = "mosei", mode: str | None = None,
                       split_names: tuple[str, ...] = ("test", "validation"),
                       training_arguments: dict | None = None) -> dict[str, float]:  # fmt: skip
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
    run = TaskRun(model, processor, None, None, scored=_scored_splits(model.config, splits, mode, split_names))
    with tempfile.TemporaryDirectory() as scratch:  # Trainer wants an output folder; evaluation writes nothing
        arguments = {"per_device_eval_batch_size": 64, "report_to": "none", **(training_arguments or {})}
        args = TrainingArguments(**{**arguments, "output_dir": scratch})
        compute_metrics = sentiment_compute_metrics(dataset, mode)
        return sentiment_score(run, MambaTrainer(model, args, data_collator=processor, compute_metrics=compute_metrics))


def _scored_splits(config, splits, mode: str, names=("test", "validation")) -> dict[str, datasets.Dataset]:
    """{name: the model's columns of splits[name]}. Raises ValueError: a split missing, other feature sizes."""
    missing = [name for name in names if name not in splits]
    if missing:
        raise ValueError(f"splits has no {missing} (it has {list(splits)})")
    for name in names:
        check_feature_sizes(config, splits[name])
    return {name: _model_columns(splits[name], mode) for name in names}


# ------------------------------------------------------------------------------------------------ the task
TINY = {"hidden_size": 8, "state_size": 4, "num_hidden_layers": 1, "head_hidden_size": 8}  # --model tiny


def sentiment_training(data_args) -> dict:
    """`default_training_arguments` for --sentiment-dataset and --sentiment-mode: what the task's recipes change."""
    arguments = default_training_arguments("", data_args.sentiment_dataset, data_args.sentiment_mode or "regression")
    return {name: value for name, value in arguments.items() if name != "output_dir"}


def sentiment_run(splits, *, dataset="mosei", mode="regression", sequence_length=None, config_overrides=None,
                  data_name="") -> TaskRun:  # fmt: skip
    """A freshly initialised classifier for `splits` (from `load_mmsa` / `load_mult`) and its processor, the prepared
    splits: train, validation (which picks the best checkpoint), and test, which `sentiment_score` reports on.

    Raises:
        ValueError: dataset or mode unknown, a split or a column missing, a config field out of range.
    """
    _check_choice("dataset", dataset, DATASETS)
    prepared = prepare_sentiment_splits(splits, mode)
    model = build_sentiment_model(feature_sizes(splits["train"]), mode, **(config_overrides or {}))
    processor = CoupledMambaFeatureProcessor.from_model_config(model.config, sequence_length=sequence_length)
    compute_metrics = sentiment_compute_metrics(dataset, mode)
    return TaskRun(model, processor, prepared["train"], prepared["validation"], processor, compute_metrics, data_name,
                   {"test": prepared["test"]}, f"{dataset}, {mode}")  # fmt: skip


def _load_splits(data_args) -> datasets.DatasetDict:
    source, aligned = data_args.dataset, not data_args.sentiment_unaligned
    if data_args.sentiment_format == "mmsa":
        return loaded("--dataset", source, lambda: load_mmsa(source, aligned=aligned))
    prefix = {"mosei": "mosei_senti", "mosi": "mosi"}.get(data_args.sentiment_dataset)
    if prefix is None:
        raise UsageError(f"--sentiment-format mult holds MOSEI or MOSI only, not {data_args.sentiment_dataset}")
    return loaded("--dataset", source, lambda: load_mult(source, aligned=aligned, dataset=prefix))


def sentiment_task(task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    """The `sentiment` task's builder: a fresh model to train (`sentiment_run`), or the saved one in --model with the
    test and validation splits to score, every check on its config and the data done before its weights load."""
    if evaluate_only:
        return _saved_model_run(model_args.model, data_args)
    if model_args.model not in (None, "tiny") or model_args.lora:
        raise UsageError("--model / --lora: sentiment trains a fresh Coupled Mamba (use --config-overrides)")
    overrides = {**(TINY if model_args.model == "tiny" else {}), **parse_overrides(model_args.config_overrides)}
    fields = CoupledMambaConfig(input_sizes={"text": 1, "audio": 1, "vision": 1}).to_dict()
    check_override_keys(overrides, fields, "CoupledMambaConfig")
    splits = _load_splits(data_args)
    unaligned = data_args.sentiment_sequence_length if data_args.sentiment_unaligned else None
    mode = data_args.sentiment_mode or "regression"
    try:
        return sentiment_run(splits, dataset=data_args.sentiment_dataset, mode=mode, sequence_length=unaligned,
                             config_overrides=overrides, data_name=data_args.dataset)  # fmt: skip
    except ValueError as error:
        raise UsageError(f"--config-overrides / --sentiment-mode: {error}") from None


def _saved_model_run(name: str, data_args) -> TaskRun:
    config = loaded("--model", name, lambda: sentiment_config(name))
    splits = _load_splits(data_args)
    try:
        mode = head_mode(config, data_args.sentiment_mode)
    except ValueError as error:
        raise UsageError(f"--sentiment-mode: {error}") from None
    try:
        scored = _scored_splits(config, splits, mode)
    except ValueError as error:
        raise UsageError(f"--dataset: {data_args.dataset}: {error}") from None
    model, processor = loaded("--model", name, lambda: load_sentiment_model(name, config))
    dataset = data_args.sentiment_dataset
    return TaskRun(model, processor, None, scored["validation"], processor, sentiment_compute_metrics(dataset, mode),
                   data_args.dataset, scored, f"{dataset}, {mode}")  # fmt: skip


def sentiment_score(run: TaskRun, trainer, data_args=None) -> dict[str, float]:
    """MMSA's metrics on each of `run.scored`: {"test_MAE": ..., "validation_MAE": ...} (Trainer's runtimes too)."""
    metrics = {}
    for prefix, split in run.scored.items():
        metrics.update(trainer.evaluate(split, metric_key_prefix=prefix))
    return metrics


__all__ = [
    "DATASET_NAMES",
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
    "sentiment_run",
    "sentiment_score",
    "sentiment_task",
]
