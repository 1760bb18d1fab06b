"""The `mamba-multimodal` command line (run through the light launcher `mamba_multimodal_cli`).

    mamba-multimodal train TASK [--model tiny|FOLDER|HUB_ID] [--dataset ...] [--lora] [--recipe paper] [...]
    mamba-multimodal evaluate TASK --model FOLDER [--dataset ...]
    mamba-multimodal export-onnx MODEL OUTPUT [--image-size 224] [--opset 18] [--static-batch]
    mamba-multimodal push FOLDER USER/NAME [--private] [--revision BRANCH] [--commit-message ...]
    mamba-multimodal train-sentiment DATA OUTPUT_DIR [--dataset mosei] [--mode regression] [--unaligned] ...

MODEL is a Hub id or a local folder (NVIDIA's `nvidia/MambaVision-*` repos load as this package's classes). DATA is an
MMSA or MulT feature pickle, a folder holding one, or a Hub dataset id (`training.data.load_mmsa`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import os
import sys
import time
from pathlib import Path

PROG = "mamba-multimodal"
_TIMING = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")


class UsageError(Exception):
    """A command-line mistake: one line on stderr naming the argument, exit code 2."""


def _export_onnx(args: argparse.Namespace) -> int:
    from transformers import AutoModelForImageClassification

    import mamba_multimodal  # noqa: F401  (registers the Auto classes)
    from mamba_multimodal.export import export_onnx

    model = AutoModelForImageClassification.from_pretrained(args.model)
    path = export_onnx(
        model, args.output, image_size=args.image_size, opset=args.opset, dynamic_batch=not args.static_batch
    )
    print(f"wrote {path} (checked against PyTorch with onnxruntime)")
    return 0


def _train_sentiment(args: argparse.Namespace) -> int:
    """`train-sentiment DATA OUTPUT_DIR ...` (the older form of `train sentiment`): the paper's settings by default."""
    from mamba_multimodal.training import load_mmsa, load_mult

    if args.format == "mmsa":
        splits = _loaded("DATA", args.data, lambda: load_mmsa(args.data, aligned=not args.unaligned))
    else:
        prefix = {"mosei": "mosei_senti", "mosi": "mosi"}.get(args.dataset)
        if prefix is None:
            raise UsageError(f"--format mult holds MOSEI or MOSI only, got --dataset {args.dataset}")
        splits = _loaded("DATA", args.data, lambda: load_mult(args.data, aligned=not args.unaligned, dataset=prefix))
    training = {
        key: value
        for key, value in {
            "num_train_epochs": args.epochs,
            "max_steps": args.max_steps,
            "per_device_train_batch_size": args.batch_size,
            "per_device_eval_batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seed": args.seed,
        }.items()
        if value is not None
    }
    return _run_sentiment(
        splits,
        args.output_dir,
        data_name=args.data,
        recipe="paper",
        dataset=args.dataset,
        mode=args.mode,
        sequence_length=args.sequence_length or (50 if args.unaligned else None),
        config_overrides={"coupling": args.coupling} if args.coupling else {},
        training_arguments=training,
    )


def _loaded(argument: str, value: str, load):
    from .tasks import _from_hub

    return _from_hub(argument, value, load)


def _add_train_sentiment(commands) -> None:
    from mamba_multimodal.training.metrics import DATASETS, MODES

    train = commands.add_parser(
        "train-sentiment", help="train Coupled Mamba on MMSA / MulT sentiment features, test with MMSA's metrics"
    )
    train.add_argument("data", help="an MMSA or MulT feature pickle, a folder holding one, or a Hub dataset id")
    train.add_argument("output_dir", help="where the best model, its processor and test_results.json go")
    train.add_argument("--format", choices=("mmsa", "mult"), default="mmsa", help="the pickle's layout")
    train.add_argument("--dataset", choices=DATASETS, default="mosei", help="picks the metrics and batch size")
    train.add_argument("--mode", choices=MODES, default="regression", help="score (L1) or 3 classes")
    train.add_argument("--unaligned", action="store_true", help="read the unaligned file, resample every modality")
    train.add_argument("--sequence-length", type=int, help="steps to resample unaligned data to (default 50)")
    train.add_argument("--coupling", choices=("sum", "mean", "none"), help="default: the config's (mean)")
    train.add_argument("--epochs", type=float, help="default 150 (the paper)")
    train.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    train.add_argument("--batch-size", type=int, help="default: the paper's for --dataset")
    train.add_argument("--learning-rate", type=float, help="default 5e-4 (the paper)")
    train.add_argument("--seed", type=int, help="default 202 (the released code's)")
    train.set_defaults(run=_train_sentiment)


# ---------------------------------------------------------------------------------------- train / evaluate
def _parser():
    from transformers import HfArgumentParser, TrainingArguments

    from .tasks import DataArguments, ModelArguments

    class Parser(HfArgumentParser):
        def error(self, message):
            raise UsageError(message)

    return Parser((ModelArguments, DataArguments, TrainingArguments), prog=PROG)


def _given(options: list[str]) -> set[str]:
    """The dataclass fields named on the command line (`--output-dir x`, `--output_dir=x`)."""
    return {option[2:].split("=")[0].replace("-", "_") for option in options if option.startswith("--")}


def _parse(command: str, argv: list[str]):
    from .tasks import RECIPES, check_local

    task_names = tuple(RECIPES)
    if not argv or argv[0] not in task_names:
        if argv and argv[0] in ("-h", "--help"):
            _parser().print_help()
            raise SystemExit(0)
        wrong = argv[0] if argv else None
        close = difflib.get_close_matches(wrong or "", task_names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"TASK: {'missing' if wrong is None else repr(wrong)}{hint}; one of: {', '.join(task_names)}")
    task, options = argv[0], argv[1:]
    given = _given(options)
    if "output_dir" not in given:
        options += ["--output-dir", f"runs/{task}" if command == "train" else str(Path(os.devnull).parent)]
    try:
        model_args, data_args, training_args = _parser().parse_args_into_dataclasses(args=options)
    except ValueError as error:  # "Some specified arguments are not used by the HfArgumentParser: [...]"
        raise UsageError(f"{task}: {error}; `{PROG} {command} {task} --help` lists the options") from None
    if data_args.recipe not in RECIPES[task]:
        raise UsageError(f"--recipe: {task} has the recipes {', '.join(RECIPES[task])}, not {data_args.recipe!r}")
    if command == "evaluate" and model_args.model in (None, "tiny"):
        raise UsageError("--model: evaluate needs a trained model's folder or Hub id")
    check_local("--model", model_args.model)
    check_local("--dataset", data_args.dataset)
    return task, model_args, data_args, _with_recipe(task, data_args.recipe, training_args, given)


def _recipe_values(task: str, recipe: str) -> dict:
    """The TrainingArguments values of a task's recipe (sentiment's stand alone; the others add COMMON_TRAINING)."""
    from .tasks import COMMON_TRAINING, RECIPES

    return dict(RECIPES[task][recipe]) if task == "sentiment" else {**COMMON_TRAINING, **RECIPES[task][recipe]}


def _set_over_recipe(task: str, recipe: str, args) -> list[str]:
    """ "name value" of each training argument that differs from the recipe's (given on the command line), and
    max_steps where set (it replaces the recipe's epochs)."""
    changed = []
    for name, value in _recipe_values(task, recipe).items():
        if hasattr(args, name):
            got = getattr(args, name)
            got = getattr(got, "value", got)  # the enums of TrainingArguments (strategy, scheduler)
            if got != value:
                changed.append(f"{name} {got}")
    if args.max_steps > 0:
        changed.append(f"max_steps {args.max_steps}")
    return changed


def _with_recipe(task: str, recipe: str, training_args, given: set[str]):
    """TrainingArguments with the recipe's values where the command line gave none."""
    values = _recipe_values(task, recipe)
    global_batch = values.pop("global_batch_size", None)
    if global_batch is not None:  # a paper's global batch: per device = global / (processes x accumulation steps)
        shares = training_args.world_size * training_args.gradient_accumulation_steps
        if global_batch % shares and "per_device_train_batch_size" not in given:
            raise UsageError(
                f"--recipe {recipe}: its global batch {global_batch} does not split over {shares} (processes x "
                "--gradient-accumulation-steps); pass --per-device-train-batch-size"
            )
        values["per_device_train_batch_size"] = global_batch // shares
    if "report_to" not in given:
        import importlib.util

        values["report_to"] = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    values = {key: value for key, value in values.items() if key not in given}
    return dataclasses.replace(training_args, **values) if values else training_args


def _estimate_callback():
    from transformers import TrainerCallback

    class EstimatedDuration(TrainerCallback):
        """Prints the estimated duration of the whole run after the first steps (5, or all of them if fewer)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == min(5, state.max_steps):
                per_step = (time.perf_counter() - self.start) / state.global_step
                print(
                    f"\n[{PROG}] {state.global_step} steps in {per_step * state.global_step:.1f} s: about "
                    f"{_duration(per_step * state.max_steps)} for all {state.max_steps} steps",
                    flush=True,
                )

    return EstimatedDuration()


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def _print_setup(task, model, data: str, args, *, lora=False, writes=True, recipe: str | None = None) -> None:
    """The setup block: task and model class, data sizes, parameters, device and threads, output, recipe."""
    import torch

    from .tasks import FAMILY_NAMES, RECIPE_NOTES

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines = [
        f"task: {task} ({FAMILY_NAMES[task]}, {type(model).__name__}{', LoRA' if lora else ''})",
        f"data: {data}",
        f"parameters: {total:,} (trainable {trainable:,})",
        f"device: {args.device}, torch threads: {torch.get_num_threads()}"
        + (f"; output: {args.output_dir}" if writes else ""),
    ]
    if recipe is not None:
        lines.append(f"recipe: {recipe}: {RECIPE_NOTES[task][recipe]}")
        changed = _set_over_recipe(task, recipe, args)
        if changed:
            lines.append(f"set over the recipe: {', '.join(changed)}")
        if recipe == "paper" and args.device.type == "cpu":
            lines.append(
                "the paper's recipe is sized for GPUs: the estimated duration after the first steps says what it "
                "costs on this CPU (--max-steps N stops sooner)"
            )
    print("\n".join(f"[{PROG}] {line}" for line in lines), flush=True)


def _data_line(run) -> str:
    train, evaluation = (len(split) if split is not None else 0 for split in (run.train, run.eval))
    return f"{run.data_name}, {train} train / {evaluation} eval examples"


def _print_table(metrics: dict) -> None:
    """The metric table (markdown); Trainer's timing entries (`test_runtime`, ...) stay in metrics.json only."""
    metrics = {name: value for name, value in metrics.items() if not name.endswith(_TIMING) and name != "epoch"}
    width = max(map(len, metrics), default=6)
    print(f"\n| {'metric':<{width}} | value    |\n|{'-' * (width + 2)}|----------|")
    for name, value in metrics.items():
        print(f"| {name:<{width}} | {value:<8.4f} |" if isinstance(value, float) else f"| {name:<{width}} | {value} |")


def _trainer(run, args, callbacks=()):
    from .trainer import MambaTrainer

    return MambaTrainer(
        model=run.model,
        args=args,
        train_dataset=run.train,
        eval_dataset=run.eval,
        data_collator=run.collator,
        compute_metrics=run.compute_metrics,
        callbacks=list(callbacks),
    )


def _hub_target(args):
    """(TrainingArguments with Trainer's own push off, the repo to push the final folder to or None): with
    `--push_to_hub`, the Hub is checked before anything trains (offline, no token: one line), and the CLI pushes the
    finished folder in one commit instead of Trainer's checkpoint pushes."""
    if not args.push_to_hub:
        return args, None
    from ..hub import HubError, check_can_push

    try:
        check_can_push(args.hub_token)
    except HubError as error:
        raise UsageError(f"--push_to_hub: {error}") from None
    return dataclasses.replace(args, push_to_hub=False), args.hub_model_id or Path(args.output_dir).name


def _push_finished(output_dir, repo_id, args) -> None:
    from ..hub import push_folder

    commit = push_folder(output_dir, repo_id, private=args.hub_private_repo or None, token=args.hub_token)
    print(f"[{PROG}] pushed {output_dir} to {repo_id}: {commit.commit_url}")


def _train(task, model_args, data_args, args) -> int:
    from transformers import set_seed

    from .tasks import TASK_BUILDERS

    args, push_to = _hub_target(args)
    set_seed(args.seed)
    run = TASK_BUILDERS[task](model_args, data_args)
    if run.compute_metrics is None:  # generative: the eval loss is tracked, the metric is computed at the end
        args = dataclasses.replace(args, prediction_loss_only=True)
    if model_args.lora:
        from .lora import get_lora_model

        run.model = get_lora_model(run.model)
    _print_setup(task, run.model, _data_line(run), args, lora=model_args.lora, recipe=data_args.recipe)
    trainer = _trainer(run, args, [_estimate_callback()])
    trainer.train()
    metrics = _finish(task, run, trainer, data_args, args.output_dir, lora=model_args.lora)
    print(f"[{PROG}] the model and its processor are in {args.output_dir} (from_pretrained({args.output_dir!r}))")
    if push_to is not None:
        _push_finished(args.output_dir, push_to, args)
    else:
        print(f"[{PROG}] to share it: {PROG} push {args.output_dir} USER/NAME")
    return 0 if metrics is not None else 1


def _finish(task, run, trainer, data_args, output_dir, lora: bool = False) -> dict:
    from ..file_utils import staged_into
    from ..hub import write_model_card
    from .tasks import score

    if hasattr(trainer.model, "merge_and_unload"):
        trainer.model = trainer.model.merge_and_unload()
    metrics = score(task, run, trainer, data_args)
    _print_table(metrics)
    with staged_into(output_dir) as staging:
        trainer.model.save_pretrained(staging, processor=run.processor)
        details = _card_details(task, run, trainer, data_args, metrics, lora)
        write_model_card(staging, trainer.model, model_id=Path(output_dir).resolve().name, **details)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        trainer.state.save_to_json(str(staging / "trainer_state.json"))  # the log history (losses, train_runtime)
        draw_curves(trainer.state.log_history, staging / "training_curves.png")
    print(f"[{PROG}] wrote metrics.json and training_curves.png to {output_dir}")
    return metrics


def _card_details(task, run, trainer, data_args, metrics, lora: bool) -> dict:
    """What the model card says of the run: the recipe, the data and the measured metrics."""
    from ..hub import as_hub_id

    args, state = trainer.args, trainer.state
    training = {
        "command": f"{PROG} train {task}",
        "recipe": data_args.recipe + (" + LoRA (merged into the weights)" if lora else ""),
        "data": f"{run.data_name}: {len(run.train) if run.train is not None else 0} training examples",
        "optimizer steps": state.global_step,
        "epochs": round(state.epoch or 0.0, 2),
        "learning rate": args.learning_rate,
        "batch size per device": args.per_device_train_batch_size,
        "scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "seed": args.seed,
    }
    hub_dataset = as_hub_id(run.data_name)
    return {
        "task": task,
        "metrics": {name: value for name, value in metrics.items() if isinstance(value, (int, float))},
        "dataset_name": run.data_name,
        "datasets": [hub_dataset] if hub_dataset else [],
        "training": training,
    }


def _evaluate(task, model_args, data_args, args) -> int:
    from .tasks import TASK_BUILDERS, score

    run = TASK_BUILDERS[task](model_args, data_args, evaluate_only=True)
    args = dataclasses.replace(args, report_to="none")
    _print_setup(task, run.model, _data_line(run), args, writes=False)
    metrics = score(task, run, _trainer(run, args), data_args)
    _print_table(metrics)
    return 0


def _sentiment(command, model_args, data_args, args, given) -> int:
    from .data import load_mmsa
    from .metrics import DATASETS, MODES

    if data_args.dataset is None:
        raise UsageError("--dataset: sentiment needs an MMSA / MulT pickle, a folder holding one, or a Hub id")
    if data_args.sentiment_dataset not in DATASETS:
        raise UsageError(f"--sentiment-dataset: one of {', '.join(DATASETS)}, got {data_args.sentiment_dataset!r}")
    if data_args.sentiment_mode not in MODES:
        raise UsageError(f"--sentiment-mode: one of {', '.join(MODES)}, got {data_args.sentiment_mode!r}")
    if command == "evaluate":
        return _evaluate_sentiment(model_args, data_args, args, given)
    if model_args.model not in (None, "tiny") or model_args.lora:
        raise UsageError("--model / --lora: sentiment trains a fresh Coupled Mamba (use --config-overrides)")
    from .tasks import check_override_keys, parse_overrides

    overrides = parse_overrides(model_args.config_overrides)
    if model_args.model == "tiny":
        overrides = {"hidden_size": 8, "state_size": 4, "num_hidden_layers": 1, "head_hidden_size": 8, **overrides}
    from ..configuration.configuration_coupled_mamba import CoupledMambaConfig

    fields = CoupledMambaConfig(input_sizes={"text": 1, "audio": 1, "vision": 1}).to_dict()
    check_override_keys(overrides, fields, "CoupledMambaConfig")
    aligned = not data_args.sentiment_unaligned
    splits = _loaded("--dataset", data_args.dataset, lambda: load_mmsa(data_args.dataset, aligned=aligned))
    names = given | {"report_to", "num_train_epochs", "per_device_train_batch_size"}
    training = {key: getattr(args, key) for key in names if hasattr(args, key) and key != "output_dir"}
    if data_args.recipe == "paper":
        training = {key: value for key, value in training.items() if key in given}
    if "per_device_train_batch_size" in training:
        training.setdefault("per_device_eval_batch_size", training["per_device_train_batch_size"])
    return _run_sentiment(
        splits,
        args.output_dir,
        data_name=data_args.dataset,
        recipe=data_args.recipe,
        dataset=data_args.sentiment_dataset,
        mode=data_args.sentiment_mode,
        sequence_length=None if aligned else 50,  # train-sentiment's default; the released code's `length`, likely 50
        config_overrides=overrides,
        training_arguments=training,
    )


def _run_sentiment(splits, output_dir, *, data_name: str, recipe: str, **arguments) -> int:
    """`train sentiment` and `train-sentiment`: `train_sentiment(splits, output_dir, **arguments)` with the setup
    block and the duration estimate, then the test metric table, metrics.json and training_curves.png."""
    from transformers import TrainerCallback

    from .sentiment import train_sentiment

    class Setup(TrainerCallback):
        """Prints the setup block once the model exists (train_sentiment builds it after seeding)."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            sizes = " / ".join(f"{len(splits[name])} {name}" for name in ("train", "validation", "test"))
            _print_setup("sentiment", model, f"{data_name}, {sizes} clips", args, recipe=recipe)

    try:
        metrics = train_sentiment(splits, output_dir, callbacks=[Setup(), _estimate_callback()], **arguments)
    except ValueError as error:
        raise UsageError(f"--config-overrides / --sentiment-mode: {error}") from None
    _print_table(metrics)
    states = sorted(Path(output_dir).glob("checkpoint-*/trainer_state.json"), key=lambda p: p.stat().st_mtime)
    history = json.loads(states[-1].read_text())["log_history"] if states else []
    draw_curves(history, Path(output_dir) / "training_curves.png")
    (Path(output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"[{PROG}] wrote test_results.json, metrics.json and training_curves.png to {output_dir}")
    print(f"[{PROG}] the model and its processor are in {output_dir} (from_pretrained({str(output_dir)!r}))")
    return 0


def _evaluate_sentiment(model_args, data_args, args, given) -> int:
    """`evaluate sentiment --model FOLDER --dataset DATA`: MMSA's metrics on the test and validation splits."""
    from .data import load_mmsa
    from .sentiment import check_feature_sizes, evaluate_sentiment, head_mode, load_sentiment_model, sentiment_config

    if model_args.lora or model_args.config_overrides:
        raise UsageError("--lora / --config-overrides: evaluate scores the saved model as it is")
    # Every check on the config and the data comes before the weights load.
    config = _loaded("--model", model_args.model, lambda: sentiment_config(model_args.model))
    aligned = not data_args.sentiment_unaligned
    splits = _loaded("--dataset", data_args.dataset, lambda: load_mmsa(data_args.dataset, aligned=aligned))
    try:
        mode = head_mode(config, data_args.sentiment_mode if "sentiment_mode" in given else None)
    except ValueError as error:
        raise UsageError(f"--sentiment-mode: {error}") from None
    try:
        for name in ("test", "validation"):
            check_feature_sizes(config, splits[name])
    except ValueError as error:
        raise UsageError(f"--dataset: {data_args.dataset}: {error}") from None
    model, processor = _loaded("--model", model_args.model, lambda: load_sentiment_model(model_args.model, config))
    sizes = f"{len(splits['test'])} test / {len(splits['validation'])} validation clips"
    _print_setup("sentiment", model, f"{data_args.dataset}, {sizes} ({data_args.sentiment_dataset}, {mode})", args,
                 writes=False)  # fmt: skip
    evaluation = {key: getattr(args, key) for key in given if hasattr(args, key) and key != "output_dir"}
    metrics = evaluate_sentiment(
        model, processor, splits, dataset=data_args.sentiment_dataset, mode=mode, training_arguments=evaluation
    )
    _print_table(metrics)
    return 0


def run_task(command: str, argv: list[str]) -> int:
    """`train` / `evaluate` TASK with HfArgumentParser's options."""
    task, model_args, data_args, args = _parse(command, argv)
    if task == "sentiment":
        return _sentiment(command, model_args, data_args, args, _given(argv[1:]))
    return (_train if command == "train" else _evaluate)(task, model_args, data_args, args)


# ---------------------------------------------------------------------------------------- curves
def draw_curves(log_history: list[dict], path) -> Path:
    """training_curves.png: train loss and the eval metric by step (matplotlib when installed, else PIL)."""
    loss = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    key = next((k for k in ("eval_accuracy", "eval_MAE", "eval_loss") if any(k in e for e in log_history)), None)
    metric = [(entry["step"], entry[key]) for entry in log_history if key in entry] if key else []
    curves = {"train loss": loss, **({key: metric} if key else {})}
    with contextlib.suppress(ImportError):
        return _draw_matplotlib(curves, Path(path))
    return _draw_pil(curves, Path(path))


def _draw_matplotlib(curves: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5))
    for axis, (name, points) in zip(list(getattr(axes, "flat", [axes])), curves.items(), strict=True):
        axis.plot(*zip(*points, strict=True), marker="o") if points else None
        axis.set_title(name)
        axis.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _draw_pil(curves: dict, path: Path) -> Path:
    from PIL import Image, ImageDraw

    width, height, margin = 420, 300, 40
    image = Image.new("RGB", (width * len(curves), height), "white")
    draw = ImageDraw.Draw(image)
    for panel, (name, points) in enumerate(curves.items()):
        left = panel * width
        box = (left + margin, margin, left + width - 15, height - margin)
        draw.rectangle(box, outline="black")
        draw.text((left + margin, 12), f"{name} by step", fill="black")
        if not points:
            draw.text((box[0] + 10, box[1] + 10), "no values logged", fill="gray")
            continue
        steps, values = zip(*points, strict=True)
        low, high = min(values), max(values)
        first, last = min(steps), max(steps)
        draw.text((box[0], box[3] + 5), f"step {first}", fill="black")
        draw.text((box[2] - 60, box[3] + 5), f"step {last}", fill="black")
        draw.text((left + 2, box[1]), f"{high:.3g}", fill="black")
        draw.text((left + 2, box[3] - 10), f"{low:.3g}", fill="black")

        def xy(step, value, box=box, first=first, last=last, low=low, high=high):
            x = box[0] + (box[2] - box[0]) * ((step - first) / (last - first) if last > first else 0.5)
            y = box[3] - (box[3] - box[1]) * ((value - low) / (high - low) if high > low else 0.5)
            return x, y

        coordinates = [xy(step, value) for step, value in points]
        if len(coordinates) > 1:
            draw.line(coordinates, fill="blue", width=2)
        for x, y in coordinates:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill="blue")
    image.save(path)
    return path


def _push(args: argparse.Namespace) -> int:
    from ..hub import HubError, push_folder

    try:
        commit = push_folder(
            args.folder,
            args.repo_id,
            private=args.private or None,
            revision=args.revision,
            commit_message=args.commit_message,
            create_pr=args.create_pr,
        )
    except HubError as error:
        raise UsageError(str(error)) from None
    print(f"[{PROG}] pushed {args.folder} to {args.repo_id} in one commit: {commit.commit_url}")
    return 0


def _add_push(commands) -> None:
    from mamba_multimodal_cli import add_push_arguments

    push = commands.add_parser("push", help="upload a saved folder to the Hub in one commit (huggingface_hub)")
    add_push_arguments(push)
    push.set_defaults(run=_push)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mamba-multimodal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_push(commands)
    export = commands.add_parser("export-onnx", help="export an image classifier to ONNX, checked with onnxruntime")
    export.add_argument("model", help="Hub id or local folder of an image classification model")
    export.add_argument("output", help="the .onnx file to write")
    export.add_argument("--image-size", type=int, default=None, help="export resolution (default: the config's)")
    export.add_argument("--opset", type=int, default=18)
    export.add_argument("--static-batch", action="store_true", help="fix the batch axis to 1")
    export.set_defaults(run=_export_onnx)
    _add_train_sentiment(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ("train", "evaluate"):
            return run_task(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
