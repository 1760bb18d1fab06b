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
from .tasks import COMMON_TRAINING, TASKS, Task

PROG = "mamba-multimodal"
TIMING = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")


# ------------------------------------------------------------------------------------------------ parse
def given_options(options: list[str]) -> set[str]:
    """The dataclass fields named on the command line (`--output-dir x`, `--output_dir=x`)."""
    return {option[2:].split("=")[0].replace("-", "_") for option in options if option.startswith("--")}


def _parser(task: Task | None = None):
    from transformers import HfArgumentParser, TrainingArguments

    class Parser(HfArgumentParser):
        def error(self, message):
            raise UsageError(message)

    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """The task's text as written, each option's default (HfArgumentParser's)."""

    description = task.help() if task else "tasks: " + ", ".join(TASKS)
    return Parser((ModelArguments, DataArguments, TrainingArguments), prog=PROG, description=description,
                  formatter_class=Formatter)  # fmt: skip


def parse(command: str, argv: list[str]):
    """`train` / `evaluate` TASK [options] → (the `Task`, ModelArguments, DataArguments, TrainingArguments with the
    recipe's values where the options give none). Raises `UsageError` on a mistake, `SystemExit` after --help."""
    if not argv or argv[0] not in TASKS:
        if argv and argv[0] in ("-h", "--help"):
            _parser().print_help()
            raise SystemExit(0)
        wrong = argv[0] if argv else None
        close = difflib.get_close_matches(wrong or "", TASKS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"TASK: {'missing' if wrong is None else repr(wrong)}{hint}; one of: {', '.join(TASKS)}")
    task, options = TASKS[argv[0]], argv[1:]
    given = given_options(options)
    if "output_dir" not in given:
        options += ["--output-dir", f"runs/{task.name}" if command == "train" else str(Path(os.devnull).parent)]
    try:
        model_args, data_args, training_args = _parser(task).parse_args_into_dataclasses(args=options)
    except ValueError as error:  # "Some specified arguments are not used by the HfArgumentParser: [...]"
        raise UsageError(f"{task.name}: {error}; `{PROG} {command} {task.name} --help` lists the options") from None
    if data_args.recipe not in task.recipes:
        raise UsageError(f"--recipe: {task.name} has the recipes {', '.join(task.recipes)}, not {data_args.recipe!r}")
    if command == "evaluate" and model_args.model in (None, "tiny"):
        raise UsageError("--model: evaluate needs a trained model's folder or Hub id")
    if command == "evaluate" and (model_args.lora or model_args.config_overrides):
        raise UsageError("--lora / --config-overrides: evaluate scores the saved model as it is")
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

    return MambaTrainer(model=run.model, args=args, train_dataset=run.train, eval_dataset=run.eval,
                        data_collator=run.collator, compute_metrics=run.compute_metrics,
                        callbacks=list(callbacks))  # fmt: skip


def _seed(args) -> None:
    """Seeded before the model is built: the seed decides the initial weights too, whatever the random state was."""
    from transformers import enable_full_determinism, set_seed

    enable_full_determinism(args.seed) if args.full_determinism else set_seed(args.seed)


def train(task: Task, model_args, data_args, args, *, callbacks=(), on_built=None) -> tuple[TaskRun, dict]:
    """Builds the run (LoRA adapters with --lora), trains, scores and saves it in `args.output_dir` (checked to be
    writable first), resuming from `args.resume_from_checkpoint` (a folder, or "True": the newest in the output
    folder)."""
    check_output_dir(args.output_dir)
    resumed = resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    args = dataclasses.replace(args, resume_from_checkpoint=resumed)
    _seed(args)
    run = build(task, model_args, data_args)
    if model_args.lora:
        from .lora import get_lora_model

        run.model = get_lora_model(run.model)
    if on_built is not None:
        on_built(run, args)
    recipe = data_args.recipe
    return run, train_run(task, run, args, data_args, callbacks=callbacks, recipe=recipe, lora=model_args.lora)


def train_run(task: Task, run: TaskRun, args, data_args=None, *, callbacks=(), recipe="cpu", lora=False) -> dict:
    """Trains a built run, merges LoRA adapters into the weights, scores and saves it; returns the metrics."""
    if run.compute_metrics is None:  # generative: the eval loss is tracked, the scorer generates at the end
        args = dataclasses.replace(args, prediction_loss_only=True)
    trainer = trainer_for(run, args, callbacks)
    resume = args.resume_from_checkpoint  # a folder, or True (train_sentiment's training_arguments) for the newest
    trainer.train(resume_from_checkpoint=True if str(resume).lower() == "true" else resume)
    if hasattr(trainer.model, "merge_and_unload"):
        trainer.model = trainer.model.merge_and_unload()
    metrics = task.load("scorer")(run, trainer, data_args)
    save(task, run, trainer, metrics, recipe=recipe, lora=lora)
    return metrics


def evaluate(task: Task, model_args, data_args, args, *, on_built=None) -> tuple[TaskRun, dict]:
    """Builds the run from the trained --model and scores it; writes nothing."""
    run = build(task, model_args, data_args, evaluate_only=True)
    args = dataclasses.replace(args, report_to="none")
    if on_built is not None:
        on_built(run, args)
    return run, task.load("scorer")(run, trainer_for(run, args), data_args)


# ------------------------------------------------------------------------------------------------ save
def result_files(run: TaskRun) -> list[str]:
    """What `save` writes beside the model, its processor, its card and trainer_state.json."""
    return [*(f"{prefix}_results.json" for prefix in run.scored), "metrics.json", "training_curves.png"]


def save(task: Task, run: TaskRun, trainer, metrics: dict, *, recipe: str, lora: bool = False) -> None:
    """Into `trainer.args.output_dir`, moved there once all is written: the model card (rendered once: it is written
    first, and save_pretrained keeps a card it finds), the model and its processor, the metrics (metrics.json, and
    `{prefix}_results.json` as Trainer.save_metrics names them where the run scores named splits), trainer_state.json
    (the log history) and training_curves.png."""
    from ..file_utils import staged_into
    from ..hub import write_model_card
    from .curves import draw_curves

    with staged_into(trainer.args.output_dir) as staging:
        write_model_card(staging, trainer.model, **_card_details(task, run, trainer, metrics, recipe, lora))
        trainer.model.save_pretrained(staging, processor=run.processor)
        for name in result_files(run)[:-1]:
            (staging / name).write_text(json.dumps(metrics, indent=2))
        trainer.state.save_to_json(str(staging / "trainer_state.json"))
        draw_curves(trainer.state.log_history, staging / "training_curves.png")


def _card_details(task: Task, run: TaskRun, trainer, metrics: dict, recipe: str, lora: bool) -> dict:
    """What the model card says of the run: the recipe, the data and the measured metrics."""
    from ..sharing.hub_id import as_hub_id

    args, state = trainer.args, trainer.state
    training = {
        "command": f"{PROG} train {task.name}",
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
    return {
        "task": task.name,
        "metrics": numbers,
        "dataset_name": run.data_name + (f" ({', '.join(run.scored)} split)" if run.scored else ""),
        "datasets": [hub_dataset] if hub_dataset else [],
        "training": training,
    }


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


__all__ = ["build", "evaluate", "given_options", "parse", "recipe_values", "result_files", "save", "set_over_recipe",
           "train", "train_run", "train_sentiment", "trainer_for"]  # fmt: skip
