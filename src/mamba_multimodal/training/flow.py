"""The one training flow, parse → build → train → score → save, as transformers' `examples/pytorch/*/run_*.py` run
it (the arguments as dataclasses through `HfArgumentParser`, the data and model, `Trainer`, the metrics, the folder).
The command line, the demo and `train_sentiment` all go through it.

    from mamba_multimodal.training import flow

    task, model_args, data_args, args = flow.parse("train", ["vqa", "--model", "tiny", "--max-steps", "3"])
    run, metrics = flow.train(task, model_args, data_args, args)       # the saved folder: args.output_dir
    run, metrics = flow.evaluate(*flow.parse("evaluate", ["vqa", "--model", args.output_dir]))

`tasks.TASKS` says what each task builds and how it is scored; `on_built(run, args)` sees the run before it trains or
is scored (the command line prints its setup block there).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import os
from pathlib import Path

from .arguments import (
    DataArguments,
    ModelArguments,
    TaskRun,
    UsageError,
    check_extra,
    check_local,
    check_model_type,
    check_output_dir,
    resume_checkpoint,
)
from .tasks import COMMON_TRAINING, TASKS, Task, task_first

PROG = "mamba-multimodal"
TIMING = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")
HELP, HELP_ALL = ("-h", "--help"), "--help-all"
# What the model card counts in the split it was scored on (else "examples").
EVAL_UNITS = {"vqa": "questions", "image-text-classification": "questions", "caption": "captions",
              "image-classification": "images"}  # fmt: skip
# The TrainingArguments a task's short --help shows beside those its recipe sets (--help-all lists every one).
OFTEN_SET = ("output_dir", "max_steps", "num_train_epochs", "per_device_train_batch_size", "learning_rate", "seed")


# ------------------------------------------------------------------------------------------------ parse
def given_options(options: list[str]) -> set[str]:
    """The dataclass fields named on the command line (`--output-dir x`, `--output_dir=x`)."""
    return {option[2:].split("=")[0].replace("-", "_") for option in options if option.startswith("--")}


def _parser(task: Task | None = None, command: str = "train", dataclass_types=None):
    """HfArgumentParser over ModelArguments, DataArguments and `dataclass_types` (default TrainingArguments), its
    mistakes raised as `UsageError`."""
    from transformers import HfArgumentParser, TrainingArguments

    class Parser(HfArgumentParser):
        def error(self, message):
            raise UsageError(message)

    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """The task's text as written, each option's default (HfArgumentParser's)."""

    description = task.help() if task else "tasks: " + ", ".join(TASKS)
    prog, usage = (f"{PROG} {command} {task.name}", f"{PROG} {command} {task.name} [options]") if task else (PROG, None)
    types = (ModelArguments, DataArguments, *(dataclass_types or (TrainingArguments,)))
    return Parser(types, prog=prog, usage=usage, description=description, formatter_class=Formatter)


def _help(command: str, task: Task, data_args, args, every_field: bool) -> str:
    """The task's --help: its text, ModelArguments and DataArguments, and the TrainingArguments its recipe sets and
    those often set, each with the value this command line would run with (the recipe's, under any option given);
    `every_field` (--help-all): every TrainingArguments field, those values as the defaults."""
    import typing

    from transformers import TrainingArguments

    names = {*recipe_values(task, data_args), *OFTEN_SET, "per_device_train_batch_size", "report_to"}
    shown = {name: _as_typed(getattr(args, name)) for name in names if hasattr(args, name)}
    if every_field:
        parser = _parser(task, command)
        parser.set_defaults(**shown)
        return parser.format_help()
    types = typing.get_type_hints(TrainingArguments)

    def field(name: str, metadata):  # its value as the default; a metavar instead of the choices (40 optimisers)
        metavar = {"metavar": name.upper()} if isinstance(shown[name], str) else {}
        return dataclasses.field(default=shown[name], metadata={**metadata, **metavar})

    fields = [(f.name, types[f.name], field(f.name, f.metadata)) for f in dataclasses.fields(TrainingArguments)
              if f.name in shown]  # fmt: skip
    training = dataclasses.make_dataclass("TrainingArguments", fields)
    training._argument_group_name = (
        f"training arguments (TrainingArguments; defaults: --recipe {data_args.recipe}'s values, under those given; "
        f"{HELP_ALL} lists every one)"
    )
    return _parser(task, command, (training,)).format_help()


def _as_typed(value):
    """A TrainingArguments value as it is typed on the command line: an enum's value, a list joined (none: [])."""
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    return getattr(value, "value", value)


def parse(command: str, argv: list[str]):
    """`train` / `evaluate` TASK [options] → (the `Task`, ModelArguments, DataArguments, TrainingArguments with the
    recipe's values where the options give none). Options may come before TASK. Raises `UsageError` on a mistake,
    `SystemExit` after --help (the task's options) or --help-all (every TrainingArguments field too)."""
    argv = task_first(argv)
    if not argv or argv[0] not in TASKS:
        if argv and argv[0] in (*HELP, HELP_ALL):
            _parser().print_help()
            raise SystemExit(0)
        wrong = argv[0] if argv else None
        close = difflib.get_close_matches(wrong or "", TASKS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"TASK: {'missing' if wrong is None else repr(wrong)}{hint}; one of: {', '.join(TASKS)}")
    task, options = TASKS[argv[0]], argv[1:]
    asked_help = {*HELP, HELP_ALL} & set(options)
    options = [option for option in options if option not in (*HELP, HELP_ALL)]
    given = given_options(options)
    if "output_dir" not in given:
        options += ["--output-dir", f"runs/{task.name}" if command == "train" else str(Path(os.devnull).parent)]
    parser = _parser(task)
    _check_bf16_has_a_device(parser.parse_known_args(options)[0])  # before TrainingArguments refuses it unclearly
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=options)
    except ValueError as error:  # "Some specified arguments are not used by the HfArgumentParser: [...]"
        raise UsageError(f"{task.name}: {error}; `{PROG} {command} {task.name} --help` lists the options") from None
    if data_args.recipe not in task.recipes:
        raise UsageError(f"--recipe: {task.name} has the recipes {', '.join(task.recipes)}, not {data_args.recipe!r}")
    if asked_help:
        args = _with_recipe(task, data_args, training_args, given)
        print(_help(command, task, data_args, args, every_field=HELP_ALL in asked_help), end="")
        raise SystemExit(0)
    if command == "evaluate" and model_args.model in (None, "tiny"):
        raise UsageError("--model: evaluate needs a trained model's folder or Hub id")
    training_only = (model_args.lora, model_args.config_overrides, model_args.freeze, model_args.cache_vision_features)
    if command == "evaluate" and any(training_only):
        raise UsageError(
            "--lora / --config-overrides / --freeze / --cache-vision-features: evaluate scores the saved model as it is"
        )
    frozen_parts(model_args.freeze)  # its form, before anything is loaded
    if data_args.dataset is None and task.default_dataset is None:
        raise UsageError(f"--dataset: {task.name} needs {task.data}")
    check_local("--model", model_args.model)
    check_local("--dataset", data_args.dataset)
    _check_saved_family(task, model_args.model)
    _check_dataset_name(task, data_args.dataset)
    for extra in task.extras:  # imported at the end, by the scorer
        check_extra(extra, f"{command} {task.name} (its final scores)")
    return task, model_args, data_args, _with_recipe(task, data_args, training_args, given)


def _check_saved_family(task: Task, model: str | None) -> None:
    """A local folder of another family than the task's, told from its config.json before anything loads (a Hub id's
    config is checked when the builder loads it)."""
    from ..registry import FAMILIES

    config_file = Path(model).expanduser() / "config.json" if model not in (None, "tiny") else None
    if config_file is None or not config_file.is_file():
        return
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError):
        raise UsageError(f"--model: {config_file} is not a JSON object") from None
    check_model_type("--model", model, model_type, task.name, FAMILIES[task.family].model_type)


def _check_dataset_name(task: Task, name: str | None) -> None:
    """A name alone that is neither a local path nor the task's built-in dataset can only be a Hub id (the Hub's
    oldest datasets have no owner): a mistake at once when the Hub cannot answer, where datasets would retry for
    ~30 s before failing."""
    if name is None or "/" in name or name == task.default_dataset or Path(name).expanduser().exists():
        return
    if not _hub_reachable():
        built_in = f"the built-in {task.default_dataset!r}" if task.default_dataset else "a built-in dataset"
        raise UsageError(
            f"--dataset: {name!r} is no local file or folder, nor {built_in}, and the Hub is offline to look it up"
        )


def _hub_reachable() -> bool:
    """Not in offline mode, and the Hub's host resolves (the launcher's test, for names it does not look up)."""
    import socket
    import urllib.parse

    from huggingface_hub import constants

    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if offline or constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urllib.parse.urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def recipe_values(task: Task, data_args) -> dict:
    """The TrainingArguments values of the task's `--recipe`: its own over the task's `training` values."""
    common = task.load("training")(data_args) if task.training else COMMON_TRAINING
    return {**common, **task.recipes[data_args.recipe].values}


def _with_recipe(task: Task, data_args, training_args, given: set[str]):
    """TrainingArguments with the recipe's values where the command line gave none."""
    values = recipe_values(task, data_args)
    if task.recipes[data_args.recipe].bf16_on_gpu and not given & {"bf16", "fp16"} and _gpu_has_bf16():
        values["bf16"] = True
    if "gradient_checkpointing" in values and hasattr(training_args, "activation_checkpointing"):
        # transformers 5.2x renamed it: the old name only mirrors the new one once the arguments are built
        values["activation_checkpointing"] = values.pop("gradient_checkpointing")
        if "gradient_checkpointing" in given:
            given = given | {"activation_checkpointing"}
    global_batch = values.pop("global_batch_size", None)
    if global_batch is not None:  # a paper's global batch: per device = global / (processes x accumulation steps)
        shares = training_args.world_size * training_args.gradient_accumulation_steps
        if global_batch % shares and "per_device_train_batch_size" not in given:
            raise UsageError(
                f"--recipe {data_args.recipe}: its global batch {global_batch} does not split over {shares} "
                "(processes x --gradient-accumulation-steps); pass --per-device-train-batch-size"
            )
        values["per_device_train_batch_size"] = global_batch // shares
    if "report_to" not in given:
        values["report_to"] = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    values = {key: value for key, value in values.items() if key not in given}
    return dataclasses.replace(training_args, **values) if values else training_args


def _gpu_has_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _check_bf16_has_a_device(options: argparse.Namespace) -> None:
    """--bf16 / --bf16-full-eval where no accelerator has bf16: TrainingArguments refuses them unless --use-cpu true
    (bf16 autocast on the CPU), in words that name neither option ("Your setup doesn't support bf16/gpu")."""
    asked = [f"--{name.replace('_', '-')}" for name in ("bf16", "bf16_full_eval") if getattr(options, name)]
    if asked and not options.use_cpu and not _accelerator_has_bf16():
        raise UsageError(f"{' / '.join(asked)}: no GPU here has bf16; on the CPU, bf16 autocast needs --use-cpu true")


def _accelerator_has_bf16() -> bool:
    """TrainingArguments' own test for bf16 without --use-cpu: a GPU (CUDA, XPU, NPU, MPS, ...) with bf16, or XLA."""
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

    return is_torch_bf16_gpu_available() or is_torch_xla_available()


def freeze(model, parts: tuple[str, ...]) -> None:
    """Keeps the model's `parts` (modules named so, at any depth: "vision_tower", "language_model") as they are
    while the rest trains: no gradients, and evaluation mode in every forward, so that BatchNorm statistics stay and
    dropout / drop-path stay off (Trainer puts the whole model in training mode). A part named twice (the recipe's
    and --freeze's) or frozen again carries one such hook, not one per naming."""
    for part in dict.fromkeys(parts):
        modules = [module for name, module in model.named_modules() if name.rpartition(".")[2] == part]
        if not modules:
            raise UsageError(f"--freeze / --recipe: {type(model).__name__} has no part named {part!r}")
        for module in modules:
            module.requires_grad_(False)
            # A module matched again (frozen once more) keeps its one hook; torch has no public way to list them.
            if _in_evaluation_mode not in module._forward_pre_hooks.values():
                module.register_forward_pre_hook(_in_evaluation_mode)


def _in_evaluation_mode(module, args) -> None:
    module.eval()


def frozen_parts(option: str | None) -> tuple[str, ...]:
    """--freeze "vision_tower,lm_head" → ("vision_tower", "lm_head")."""
    parts = tuple(part.strip() for part in (option or "").split(",") if part.strip())
    if option is not None and not parts:
        raise UsageError(f"--freeze: expected module names separated by commas (e.g. vision_tower), got {option!r}")
    return parts


def cache_vision_features(model) -> None:
    """--cache-vision-features: the model's frozen vision tower runs once per distinct image (`VLMambaPreTrained
    Model.enable_vision_feature_cache`); `model` may be a PeftModel."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not hasattr(base, "enable_vision_feature_cache"):
        raise UsageError(f"--cache-vision-features: {type(base).__name__} has no vision tower (VLM-Mamba's tasks do)")
    try:
        base.enable_vision_feature_cache()
    except ValueError as error:
        raise UsageError(f"--cache-vision-features: {error}; --freeze vision_tower does") from None


def set_over_recipe(task: Task, data_args, args) -> list[str]:
    """ "name value" of each training argument that differs from the recipe's (given on the command line), and
    max_steps where set (it replaces the recipe's epochs)."""
    changed = []
    for name, value in recipe_values(task, data_args).items():
        if hasattr(args, name):
            got = getattr(args, name)
            got = getattr(got, "value", got)  # the enums of TrainingArguments (strategy, scheduler)
            if got != value:
                changed.append(f"{name} {got}")
    if args.max_steps > 0:
        changed.append(f"max_steps {args.max_steps}")
    return changed


# ------------------------------------------------------------------------------------------------ build, train, score
def build(task: Task, model_args, data_args, evaluate_only: bool = False) -> TaskRun:
    return task.load("builder")(task, model_args, data_args, evaluate_only)


def trainer_for(run: TaskRun, args, callbacks=()):
    from .trainer import MambaTrainer

    return MambaTrainer(model=run.model, args=args, train_dataset=_read_every_epoch(run.train), eval_dataset=run.eval,
                        data_collator=run.collator, compute_metrics=run.compute_metrics,
                        callbacks=list(callbacks))  # fmt: skip


def _read_every_epoch(train):
    """The training split as Trainer reads it: the images of every decoded `datasets.Image` column, whatever its name
    ("image", "img", "picture"), decoded once per file (`data.images.decoded_once`)."""
    import datasets

    features = getattr(train, "features", None) or {}
    # A column declared Image(decode=False) is read as {"path", "bytes"} by its builder: it stays so.
    columns = [name for name, feature in features.items() if isinstance(feature, datasets.Image) and feature.decode]
    if not columns:
        return train
    from .data.images import decoded_once

    return decoded_once(train, columns)


def _seed(args) -> None:
    """Seeded before the model is built: the seed decides the initial weights too, whatever the random state was."""
    from transformers import enable_full_determinism, set_seed

    enable_full_determinism(args.seed) if args.full_determinism else set_seed(args.seed)


def train(task: Task, model_args, data_args, args, *, callbacks=(), on_built=None, command: str | None = None
          ) -> tuple[TaskRun, dict]:  # fmt: skip
    """Builds the run (LoRA adapters with --lora), trains, scores and saves it in `args.output_dir` (checked to be
    writable first), resuming from `args.resume_from_checkpoint` (a folder, or "True": the newest in the output
    folder); `command`: the command line that asked for it, for the model card."""
    check_output_dir(args.output_dir)
    resumed = resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    args = dataclasses.replace(args, resume_from_checkpoint=resumed)
    _seed(args)
    run = build(task, model_args, data_args)
    freeze(run.model, task.recipes[data_args.recipe].frozen + frozen_parts(model_args.freeze))
    if model_args.lora:
        from .lora import get_lora_model

        run.model = get_lora_model(run.model)
    if model_args.cache_vision_features:
        cache_vision_features(run.model)
    if on_built is not None:
        on_built(run, args)
    recipe = data_args.recipe
    lora = model_args.lora
    return run, train_run(task, run, args, data_args, callbacks=callbacks, recipe=recipe, lora=lora, command=command)


def train_run(task: Task, run: TaskRun, args, data_args=None, *, callbacks=(), recipe="cpu", lora=False,
              command: str | None = None) -> dict:  # fmt: skip
    """Trains a built run, merges LoRA adapters into the weights, scores and saves it; returns the metrics."""
    if run.compute_metrics is None:  # generative: the eval loss is tracked, the scorer generates at the end
        args = dataclasses.replace(args, prediction_loss_only=True)
    trainer = trainer_for(run, args, callbacks)
    _check_gathered_on_save(trainer)
    resume = args.resume_from_checkpoint  # a folder, or True (train_sentiment's training_arguments) for the newest
    trainer.train(resume_from_checkpoint=True if str(resume).lower() == "true" else resume)
    if hasattr(trainer.model, "merge_and_unload"):
        trainer.model = trainer.model.merge_and_unload()
    if hasattr(trainer.model, "disable_vision_feature_cache"):  # the scorer's images are new: the tower runs
        trainer.model.disable_vision_feature_cache()
    metrics = task.load("scorer")(run, trainer, data_args)
    save(task, run, trainer, metrics, recipe=recipe, lora=lora, command=command)
    return metrics


def evaluate(task: Task, model_args, data_args, args, *, on_built=None) -> tuple[TaskRun, dict]:
    """Builds the run from the trained --model and scores it; writes nothing."""
    run = build(task, model_args, data_args, evaluate_only=True)
    args = dataclasses.replace(args, report_to="none")
    if on_built is not None:
        on_built(run, args)
    return run, task.load("scorer")(run, trainer_for(run, args), data_args)


def leave_process_group() -> None:
    """Ends a multi-process run's process group once every process is done (no-op in one process), after the
    objects that use it: the run's DDP wrapper and its reducer, which the finished Trainer still references through
    reference cycles, are collected first (destroyed after the group, at the function's return, a process hung in
    the reducer's teardown). Without this, a process that exits with gloo work in flight can abort in gloo's
    teardown after a complete run ("terminate called without an active exception", exit code -6;
    pytorch/pytorch#190489). For the command line's end: a library caller may still use the group."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------ save
def result_files(run: TaskRun) -> list[str]:
    """What `save` writes beside the model, its processor, its card and trainer_state.json."""
    return [*(f"{prefix}_results.json" for prefix in run.scored), "metrics.json", "training_curves.png"]


def save(task: Task, run: TaskRun, trainer, metrics: dict, *, recipe: str, lora: bool = False, command=None) -> None:
    """Into `trainer.args.output_dir`, moved there once all is written: the model card (rendered once: it is written
    first, and save_pretrained keeps a card it finds), the model and its processor, the metrics (metrics.json, and
    `{prefix}_results.json` as Trainer.save_metrics names them where the run scores named splits), trainer_state.json
    (the log history) and training_curves.png.

    Every process of a multi-process run calls it; the main process alone writes, the others wait until it is done.
    """
    from ..file_utils import staged_into
    from ..hub import write_model_card
    from .curves import draw_curves

    state_dict = _gathered_state_dict(trainer)
    if trainer.args.should_save:
        with staged_into(trainer.args.output_dir) as staging:
            details = _card_details(task, run, trainer, metrics, recipe, lora, command)
            write_model_card(staging, trainer.model, **details)
            trainer.model.save_pretrained(staging, processor=run.processor, state_dict=state_dict)
            for name in result_files(run)[:-1]:
                (staging / name).write_text(json.dumps(metrics, indent=2))
            trainer.state.save_to_json(str(staging / "trainer_state.json"))
            draw_curves(trainer.state.log_history, staging / "training_curves.png")
    trainer.accelerator.wait_for_everyone()


def _zero3_settings(trainer) -> dict | None:
    """The `zero_optimization` settings of a DeepSpeed ZeRO-3 run (which partitions every weight over the
    processes), else None."""
    if not trainer.is_deepspeed_enabled:
        return None
    zero = trainer.accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {})
    return zero if zero.get("stage") == 3 else None


def _check_gathered_on_save(trainer) -> None:
    """Before training: a ZeRO-3 run can save a `from_pretrained` folder only if DeepSpeed gathers the weights."""
    zero = _zero3_settings(trainer)
    if zero is not None and zero.get("stage3_gather_16bit_weights_on_model_save") is not True:
        raise UsageError(
            "DeepSpeed ZeRO-3 partitions the weights over the processes: set zero_optimization's "
            '"stage3_gather_16bit_weights_on_model_save": true in the DeepSpeed config (accelerate config: '
            "zero3_save_16bit_model: true) so that the trained model can be saved for from_pretrained"
        )


def _gathered_state_dict(trainer) -> dict | None:
    """The weights of a ZeRO-3 run gathered into the main process (every process takes part); None otherwise: the
    model then holds its own weights."""
    return trainer.accelerator.get_state_dict(trainer.deepspeed) if _zero3_settings(trainer) is not None else None


def _card_details(task: Task, run: TaskRun, trainer, metrics: dict, recipe: str, lora: bool, command=None) -> dict:
    """What the model card says of the run: the command, the recipe, the data, the measured metrics and what they
    were measured on."""
    from ..sharing.hub_id import as_hub_id

    args, state = trainer.args, trainer.state
    training = {
        "command": f"`{command}`" if command else f"{PROG} train {task.name}",
        "recipe": recipe + (" + LoRA (merged into the weights)" if lora else ""),
        "data": f"{run.data_name}: {len(run.train) if run.train is not None else 0} training examples"
        + (f" ({run.details})" if run.details else ""),
        "optimizer steps": state.global_step,
        "epochs": round(state.epoch or 0.0, 2),
        "learning rate": args.learning_rate,
        "batch size per device": args.per_device_train_batch_size,
        "scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "seed": args.seed,
    }
    if args.load_best_model_at_end:
        training["checkpoint"] = f"the best validation {args.metric_for_best_model}"
    prefix = f"{next(iter(run.scored))}_" if len(run.scored) == 1 else ""  # test_MAE: MAE on the test split
    numbers = {name.removeprefix(prefix): value for name, value in metrics.items()
               if isinstance(value, (int, float)) and not name.endswith(TIMING) and name != "epoch"}  # fmt: skip
    hub_dataset = as_hub_id(run.data_name)
    split, scored, rows = _scored_on(run)
    unit = EVAL_UNITS.get(task.name, "examples")
    return {
        "task": task.name,
        "metrics": numbers,
        "dataset_name": run.data_name + (f" ({split} split)" if split else ""),
        "datasets": [hub_dataset] if hub_dataset else [],
        "training": training,
        "evaluated_on": f"{scored:,} of {rows:,} {unit} of the {split} split of {run.data_name}" if split else None,
        "dataset_split": split or None,
        "command": command or f"{PROG} train {task.name}",
        "eval_dataset": hub_dataset or run.data_name,
    }


def _scored_on(run: TaskRun) -> tuple[str, int, int]:
    """(the split the card's metrics are measured on, the rows scored, its rows); ("", 0, 0) when unknown."""
    if len(run.scored) == 1:  # sentiment: the test split, whole
        (split, data), *_ = run.scored.items()
        return split, len(data), len(data)
    if not run.eval_split or run.eval is None:
        return "", 0, 0
    return run.eval_split, len(run.eval), run.eval_rows or len(run.eval)


# ------------------------------------------------------------------------------------------------ on data in memory
def train_sentiment(splits, output_dir: str | os.PathLike, *, dataset: str = "mosei", mode: str = "regression",
                    sequence_length: int | None = None, config_overrides: dict | None = None, callbacks=None,
                    training_arguments: dict | None = None) -> dict[str, float]:  # fmt: skip
    """The `sentiment` task's flow on splits already loaded (`load_mmsa` / `load_mult`): trains Coupled Mamba, keeps
    the best checkpoint on the validation split, scores it on the test split with MMSA's metrics for `dataset` and
    `mode` and saves it in `output_dir` (with `test_results.json`; the checkpoints in `output_dir/checkpoint-*`).

    Args:
        sequence_length: None for word-aligned data; T to resample unaligned data to T steps.
        config_overrides: `CoupledMambaConfig` fields (coupling, hidden_size, ...).
        training_arguments: `TrainingArguments` fields over `sentiment.default_training_arguments`. Their `seed`
            (default 202) decides the initial weights as well as the data order.
        callbacks: `TrainerCallback`s for the trainer.
    Returns:
        The test metrics ("test_MAE", "test_Non0_acc_2", ...).
    """
    from transformers import TrainingArguments

    from .sentiment import DATASET_NAMES, default_training_arguments, sentiment_run

    arguments = default_training_arguments(output_dir, dataset, mode)
    args = TrainingArguments(**{**arguments, **(training_arguments or {})})
    _seed(args)
    run = sentiment_run(splits, dataset=dataset, mode=mode, sequence_length=sequence_length,
                        config_overrides=config_overrides, data_name=DATASET_NAMES[dataset])  # fmt: skip
    recipe = "paper" if not training_arguments else "paper, with training_arguments over it"
    return train_run(TASKS["sentiment"], run, args, callbacks=callbacks or (), recipe=recipe)


__all__ = ["build", "evaluate", "freeze", "given_options", "parse", "recipe_values", "result_files", "save",
           "set_over_recipe", "train", "train_run", "train_sentiment", "trainer_for"]  # fmt: skip
