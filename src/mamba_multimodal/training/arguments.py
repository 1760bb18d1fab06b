"""What a task's builder receives and returns: the command line's `ModelArguments` and `DataArguments` (read by
`HfArgumentParser` beside `TrainingArguments`), and the `TaskRun` it builds; `UsageError`, the one-line mistake every
layer of the command line raises, and the checks of the arguments that builders share.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics.sentiment import DATASETS, MODES
from .tasks import RECIPE_NAMES


class UsageError(Exception):
    """A command-line mistake: one line on stderr naming the argument, exit code 2."""


def _option(default, about: str, choices=None):
    """A dataclass field with HfArgumentParser's help (and choices)."""
    return field(default=default, metadata={"help": about, **({"choices": list(choices)} if choices else {})})


@dataclass
class ModelArguments:
    model: str | None = _option(None, "a Hub id or a local folder to start from; `tiny` for a tiny fresh model (tests, "
                                "smoke runs); default: a small fresh model sized for a CPU")  # fmt: skip
    config_overrides: str | None = _option(None, "config fields to change, `key=value,key=value` (values read as JSON)")
    lora: bool = _option(False, "train LoRA adapters (the family's preset, lora_config_for)")
    freeze: str | None = _option(None, "parts of the model kept as they are, added to the recipe's: module names, "
                                 "comma-separated (e.g. `vision_tower`); no gradients, evaluation mode")  # fmt: skip
    cache_vision_features: bool = _option(False, "VLM-Mamba with its vision tower frozen (--freeze vision_tower or "
                                          "the recipe's): the tower runs once per distinct training image, its "
                                          "features reused in later epochs (images told apart by a "
                                          "digest of their pixels)")  # fmt: skip


@dataclass
class DataArguments:
    dataset: str | None = _option(None, "the data: the forms and the default are above")
    recipe: str = _option("cpu", "`cpu` (default: sized for a CPU), `paper` (the paper's, sized for GPUs) or another "
                          "of the task's recipes, as described above; the estimated duration after the first steps "
                          "says what it costs here; any option given explicitly wins over the recipe's",
                          RECIPE_NAMES)  # fmt: skip
    max_train_samples: int | None = _option(None, "use only the first N training examples")
    max_eval_samples: int | None = _option(None, "use only the first N evaluation examples")
    max_new_tokens: int = _option(8, "caption / vqa: tokens generated per answer")
    prompt_style: str | None = _option(None, "vqa, gqa, textvqa, pope: the benchmark prompts of `llava-1.5` or "
                                       "`cobra`, or the `question` alone (default: question for vqa, llava-1.5 for "
                                       "the others)",
                                       ("question", "llava-1.5", "cobra"))  # fmt: skip
    image_root: str | None = _option(None, "instruct: the folder the LLaVA JSON's image paths are relative to "
                                     "(default: the JSON's folder)")  # fmt: skip
    sentiment_dataset: str = _option("mosei", "sentiment: which metrics (MMSA's) and paper batch size", DATASETS)
    sentiment_mode: str | None = _option(None, "sentiment: regression (train's default) or classification; evaluate: "
                                         "the head's", MODES)  # fmt: skip
    sentiment_unaligned: bool = _option(False, "sentiment: read the unaligned pickle (MMSA's unaligned_50.pkl, SIMS' "
                                        "unaligned_39.pkl) and resample every modality (train); evaluate uses the "
                                        "resampling the model was saved with")  # fmt: skip
    sentiment_sequence_length: int = _option(50, "sentiment: steps to resample unaligned data to")
    sentiment_format: str = _option("mmsa", "sentiment: the pickle's layout (MulT: MOSEI or MOSI)", ("mmsa", "mult"))


@dataclass
class TaskRun:
    """What a task's builder returns (`tasks.Task.builder`)."""

    model: Any
    processor: Any
    train: Any  # datasets.Dataset, or None when only evaluating
    eval: Any  # Trainer's eval_dataset (sentiment: the validation split, which picks the best checkpoint)
    collator: Any = None
    compute_metrics: Any = None  # Trainer's (classifiers); None: generative, the eval loss is tracked
    data_name: str = ""  # a name, path or Hub id: the setup block and the model card name it
    scored: dict = field(default_factory=dict)  # {metric prefix: split} the scorer reports on (sentiment: test)
    details: str = ""  # what else the setup block and the card say of the data (sentiment: "mosei, regression")
    eval_split: str = ""  # the split `eval` is ("test", "validation"), for the card
    eval_rows: int | None = None  # the rows of that split before --max-eval-samples


def check_local(argument: str, value: str | None) -> None:
    """A path ("dir/name") that does not exist and is no Hub id ("owner/name", `sharing.as_hub_id`) is a mistake,
    reported before anything touches the Hub. A name alone passes: a built-in dataset, or a Hub id to transformers."""
    from ..sharing.hub_id import as_hub_id

    if value is None or "/" not in value or as_hub_id(value) or Path(value).expanduser().exists():
        return
    raise UsageError(f"{argument}: no such file or folder: {value}")


# The pyproject extras a task or command needs at its end, and the modules each one installs.
EXTRAS = {"captions": ("pycocoevalcap",), "onnx": ("onnx", "onnxscript", "onnxruntime"), "space": ("gradio",)}


def check_extra(extra: str, needed_by: str) -> None:
    """The `extra`'s modules importable, or a one-line mistake with the install command: checked before a run starts,
    as a scorer or exporter imports them only at its end."""
    missing = [name for name in EXTRAS[extra] if not _importable(name)]
    if missing:
        raise UsageError(f"{needed_by} needs {', '.join(missing)}: pip install 'mamba-multimodal[{extra}]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it (blocked)
        return False


def check_output_dir(path: str) -> None:
    """--output-dir a folder this process can write into (or can create): checked before training, which would
    otherwise fail at the end, at save, having trained. Probes with a real file: permission bits do not tell it
    (root, read-only mounts)."""
    folder = Path(path).expanduser().absolute()
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise UsageError(f"--output-dir: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"--output-dir: cannot write into {existing} ({reason})") from None


def check_model_type(argument: str, value: str, model_type: str | None, task: str, expected: str) -> None:
    """A saved model of another family than the task's is a mistake (it would fail on a missing config field)."""
    if model_type != expected:
        raise UsageError(f"{argument}: {value} holds a {model_type!r} model; {task} needs model_type {expected!r}")


def resume_checkpoint(value: str | bool | None, output_dir: str) -> str | None:
    """--resume_from_checkpoint as the checkpoint folder it names: `True` (any case) the newest complete
    `checkpoint-N` in --output-dir, else the folder given, checked to hold a checkpoint (trainer_state.json)."""
    from transformers.trainer_utils import get_last_checkpoint

    if value in (None, False) or str(value).lower() == "false":
        return None
    if value is True or str(value).lower() == "true":
        newest = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if newest is None:
            raise UsageError(f"--resume_from_checkpoint: no checkpoint-N folder in --output-dir {output_dir} to resume")
        return newest
    if not (Path(value).expanduser() / "trainer_state.json").is_file():
        raise UsageError(f"--resume_from_checkpoint: {value} is no checkpoint folder (no trainer_state.json in it)")
    return str(Path(value).expanduser())


def loaded(argument: str, value: str, load):
    """`load()`, its OSError or ValueError (missing, unreadable, not what was expected) as a one-line mistake."""
    try:
        return load()
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{argument}: cannot load {value!r} ({first})") from None


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


__all__ = ["EXTRAS", "DataArguments", "ModelArguments", "TaskRun", "UsageError", "apply_overrides", "check_extra",
           "check_local", "check_model_type", "check_output_dir", "loaded", "parse_overrides",
           "resume_checkpoint"]  # fmt: skip
