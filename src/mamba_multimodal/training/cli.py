"""The `mamba-multimodal` command line (run through the light launcher `mamba_multimodal_cli`): its options, what it
prints, and the push; `train` and `evaluate` run `flow`'s parse → build → train → score → save.

    mamba-multimodal train TASK [--model tiny|FOLDER|HUB_ID] [--dataset ...] [--lora] [--recipe paper] [...]
    mamba-multimodal evaluate TASK --model FOLDER [--dataset ...]
    mamba-multimodal export-onnx MODEL OUTPUT [--image-size 224] [--opset 18] [--static-batch]
    mamba-multimodal push FOLDER USER/NAME [--private] [--revision BRANCH] [--commit-message ...] [--space]
    mamba-multimodal space FOLDER OUT [--model-id USER/NAME];  mamba-multimodal serve FOLDER [--port 7860]
    mamba-multimodal train-sentiment DATA OUTPUT_DIR [--dataset mosei] [--mode regression] [--unaligned] ...

MODEL is a Hub id or a local folder (NVIDIA's `nvidia/MambaVision-*` repos load as this package's classes). DATA is an
MMSA or MulT feature pickle, a folder holding one, or a Hub dataset id (`training.data.load_mmsa`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

from . import flow
from .arguments import UsageError
from .flow import PROG, TIMING


def _export_onnx(args: argparse.Namespace) -> int:
    from transformers import AutoConfig, AutoModelForImageClassification

    import mamba_multimodal  # noqa: F401  (registers the Auto classes)
    from mamba_multimodal.export import export_onnx

    from .arguments import check_extra, check_local, check_model_type, loaded

    check_extra("onnx", "export-onnx")
    check_local("MODEL", args.model)
    if "/" not in args.model and not Path(args.model).expanduser().exists():  # a name alone: no Hub id either
        raise UsageError(f"MODEL: no such folder: {args.model} (a Hub id is OWNER/NAME)")
    config = loaded("MODEL", args.model, lambda: AutoConfig.from_pretrained(args.model))
    check_model_type("MODEL", args.model, config.model_type, "export-onnx", "mambavision")
    model = loaded("MODEL", args.model, lambda: AutoModelForImageClassification.from_pretrained(args.model))
    path = export_onnx(
        model, args.output, image_size=args.image_size, opset=args.opset, dynamic_batch=not args.static_batch
    )
    print(f"wrote {path} (checked against PyTorch with onnxruntime)")
    return 0


def _train_sentiment(args: argparse.Namespace) -> int:
    """`train-sentiment DATA OUTPUT_DIR ...`: the older form of `train sentiment --recipe paper`."""
    argv = ["sentiment", "--dataset", args.data, "--output-dir", args.output_dir, "--recipe", "paper", "--report-to",
            "none", "--sentiment-format", args.format, "--sentiment-dataset", args.dataset,
            "--sentiment-mode", args.mode]  # fmt: skip
    options = {
        "--sentiment-sequence-length": args.sequence_length,
        "--config-overrides": args.coupling and f"coupling={args.coupling}",
        "--num-train-epochs": args.epochs,
        "--max-steps": args.max_steps,
        "--per-device-train-batch-size": args.batch_size,
        "--per-device-eval-batch-size": args.batch_size,
        "--learning-rate": args.learning_rate,
        "--seed": args.seed,
        "--resume_from_checkpoint": args.resume_from_checkpoint,
    }
    argv += [item for name, value in options.items() if value is not None for item in (name, str(value))]
    return run_task("train", argv + ["--sentiment-unaligned"] * args.unaligned)


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
    train.add_argument("--resume-from-checkpoint", help="a checkpoint-N folder, or True: the newest in OUTPUT_DIR")
    train.set_defaults(run=_train_sentiment)


# ---------------------------------------------------------------------------------------- printing
def _estimate_callback():
    from transformers import TrainerCallback

    class EstimatedDuration(TrainerCallback):
        """Prints the estimated duration of the whole run after the first steps (5, or all of them if fewer); the
        main process of a multi-process run alone."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.first_step = time.perf_counter(), state.global_step  # resumed: the checkpoint's step

        def on_step_end(self, args, state, control, **kwargs):
            done, left = state.global_step - self.first_step, state.max_steps - self.first_step
            if done == min(5, left) and state.is_world_process_zero:
                per_step = (time.perf_counter() - self.start) / done
                print(
                    f"\n[{PROG}] {done} steps in {per_step * done:.1f} s: about "
                    f"{_duration(per_step * left)} for all {left} steps" + (" left" if self.first_step else ""),
                    flush=True,
                )

    return EstimatedDuration()


def _duration(seconds: float) -> str:
    minutes, hours = f"{seconds / 60:.0f} min", f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s" if seconds < 120 else minutes if seconds < 7200 else hours


def _print_setup(task, run, args, *, lora=False, recipe: str | None = None, data_args=None) -> None:
    """The setup block: task and model class, data sizes, parameters, device and threads, output, recipe (printed by
    the main process of a multi-process run)."""
    import torch

    if args.process_index != 0:
        return

    total = sum(p.numel() for p in run.model.parameters())
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    splits = {"train": run.train, "validation" if run.scored else "eval": run.eval, **run.scored}
    sizes = " / ".join(f"{len(split)} {name}" for name, split in splits.items() if split is not None)
    lines = [
        f"task: {task.name} ({task.family}, {type(run.model).__name__}{', LoRA' if lora else ''})",
        f"data: {run.data_name}, {sizes} examples" + (f" ({run.details})" if run.details else ""),
        f"parameters: {total:,} (trainable {trainable:,})",
        f"device: {args.device}, torch threads: {torch.get_num_threads()}"
        + (f"; output: {args.output_dir}" if recipe is not None else ""),
    ]
    if recipe is not None:
        lines.append(f"recipe: {recipe}: {task.recipes[recipe].note}")
        changed = flow.set_over_recipe(task, data_args, args)
        if changed:
            lines.append(f"set over the recipe: {', '.join(changed)}")
        if recipe == "paper" and args.device.type == "cpu":
            lines.append(
                "the paper's recipe is sized for GPUs: the estimated duration after the first steps says what it "
                "costs on this CPU (--max-steps N stops sooner)"
            )
    print("\n".join(f"[{PROG}] {line}" for line in lines), flush=True)


def print_table(metrics: dict) -> None:
    """The metric table (markdown); Trainer's timing entries (`test_runtime`, ...) stay in metrics.json only."""
    metrics = {name: value for name, value in metrics.items() if not name.endswith(TIMING) and name != "epoch"}
    width = max(map(len, metrics), default=6)
    print(f"\n| {'metric':<{width}} | value    |\n|{'-' * (width + 2)}|----------|")
    for name, value in metrics.items():
        print(f"| {name:<{width}} | {value:<8.4f} |" if isinstance(value, float) else f"| {name:<{width}} | {value} |")


# ---------------------------------------------------------------------------------------- train / evaluate, push
def run_task(command: str, argv: list[str]) -> int:
    """`train` / `evaluate` TASK with HfArgumentParser's options, through `flow`."""
    task, model_args, data_args, args = flow.parse(command, argv)
    if command == "evaluate":
        setup = lambda run, args: _print_setup(task, run, args)  # noqa: E731
        metrics = flow.evaluate(task, model_args, data_args, args, on_built=setup)[1]
        if args.process_index == 0:
            print_table(metrics)
        flow.leave_process_group()
        return 0
    args, push_to = _hub_target(args)

    def setup(run, args):
        _print_setup(task, run, args, lora=model_args.lora, recipe=data_args.recipe, data_args=data_args)

    try:
        run, metrics = flow.train(task, model_args, data_args, args, callbacks=[_estimate_callback()], on_built=setup,
                                  command=command_line(command, argv))  # fmt: skip
    except KeyboardInterrupt:
        # On a line of its own: the progress bar that Ctrl-C stopped has not ended its line.
        print(f"\n{_how_to_resume(argv, args.output_dir)}", file=sys.stderr, flush=True)
        return 130  # 128 + SIGINT, as a shell reports a run stopped by Ctrl-C
    if args.process_index == 0:  # one report and one push however many processes trained; the others wait below
        _report_finished(run, metrics, args, push_to)
    flow.leave_process_group()
    return 0


def _report_finished(run, metrics: dict, args, push_to: str | None) -> None:
    """The metric table, the files written, and the push (with --push_to_hub) or how to push."""
    print_table(metrics)
    *first, last = flow.result_files(run)
    output = args.output_dir
    print(f"[{PROG}] wrote {', '.join(first)} and {last} to {output}")
    print(f"[{PROG}] the model and its processor are in {output} (from_pretrained({str(output)!r}))")
    if push_to is not None:
        _push_finished(output, push_to, args)
    else:
        print(f"[{PROG}] to share it: {PROG} push {output} USER/NAME")


def command_line(command: str, argv: list[str]) -> str:
    """The command as typed, shell-quoted (for the model card), with the value of --hub-token hidden."""
    shown = []
    for before, argument in zip(["", *argv], argv, strict=False):
        name, equals, _ = argument.partition("=")
        if before.replace("-", "_") == "__hub_token":
            argument = "***"
        elif equals and name.replace("-", "_") == "__hub_token":
            argument = f"{name}=***"
        shown.append(argument)
    return shlex.join([PROG, command, *shown])


def _how_to_resume(argv: list[str], output_dir: str) -> str:
    """The one line after Ctrl-C: the command that resumes from the newest complete checkpoint (MambaTrainer renames
    a checkpoint into place only once it is whole; the final folder is written only at the end), or that none was
    saved yet."""
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(output_dir).is_dir() or get_last_checkpoint(output_dir) is None:
        return f"{PROG}: interrupted before the first checkpoint in {output_dir}; nothing was saved"
    argv = _without_option(argv, "resume_from_checkpoint")  # resumed before: the newest checkpoint now
    place = [] if "output_dir" in flow.given_options(argv) else ["--output-dir", str(output_dir)]
    command = shlex.join([PROG, "train", *argv, *place, "--resume_from_checkpoint", "True"])
    return f"{PROG}: interrupted; resume from the newest checkpoint in {output_dir} with: {command}"


def _without_option(argv: list[str], name: str) -> list[str]:
    """`argv` without the option `name` (`--name value`, `--name=value`, with - or _) and its value."""
    kept, skip = [], False
    for item in argv:
        named = item.startswith("--") and item[2:].split("=")[0].replace("-", "_") == name
        if not skip and not named:
            kept.append(item)
        skip = named and "=" not in item
    return kept


def _hub_target(args):
    """(TrainingArguments with Trainer's own push off, the repo to push the final folder to or None): with
    `--push_to_hub`, the Hub is checked before anything trains (offline, no token: one line), and the CLI pushes the
    finished folder in one commit instead of Trainer's checkpoint pushes."""
    if not args.push_to_hub:
        return args, None
    from ..hub import HubError, check_can_push, check_repo_id

    repo_id = args.hub_model_id or Path(args.output_dir).name
    try:
        check_repo_id(repo_id)  # an id the Hub refuses would fail only after training
        check_can_push(args.hub_token)
    except HubError as error:
        raise UsageError(f"--push_to_hub: {error.args[0].replace('REPO_ID', '--hub_model_id', 1)}") from None
    return dataclasses.replace(args, push_to_hub=False), repo_id


def _push_finished(output_dir, repo_id, args) -> None:
    from ..hub import push_folder

    commit = push_folder(output_dir, repo_id, private=args.hub_private_repo or None, token=args.hub_token)
    print(f"[{PROG}] pushed {output_dir} to {repo_id}: {commit.commit_url}")


def _push(args: argparse.Namespace) -> int:
    from ..hub import HubError, push_folder
    from ..sharing.space import architecture_of, push_space
    from .data.easy_vqa import example_questions

    try:
        if args.space:  # a folder without a Space app says so before anything uploads
            architecture_of(args.folder)
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
    if args.space:
        commit = push_space(args.folder, args.repo_id, private=args.private or None, examples=example_questions())
        print(f"[{PROG}] created its Space {args.repo_id} (Gradio): {commit.commit_url}")
    return 0


def _space(args: argparse.Namespace) -> int:
    from ..hub import HubError
    from ..sharing.space import write_space
    from .data.easy_vqa import example_questions

    try:
        output = write_space(args.folder, args.output, model_id=args.model_id, examples=example_questions())
    except HubError as error:
        raise UsageError(str(error)) from None
    print(f"[{PROG}] wrote the Space (app.py, requirements.txt, README.md) to {output}; try it: {PROG} serve "
          f"{args.folder}")  # fmt: skip
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..hub import HubError
    from ..sharing.space import serve
    from .arguments import check_extra
    from .data.easy_vqa import example_questions

    check_extra("space", "serve")
    print(f"[{PROG}] serving {args.folder} on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        serve(args.folder, port=args.port, examples=example_questions())
    except HubError as error:
        raise UsageError(str(error)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mamba-multimodal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
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
    """Every command but `push`, which the launcher parses (`push`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("train", "evaluate"):
        return _reported(lambda: run_task(argv[0], argv[1:]))
    args = build_parser().parse_args(argv)
    return _reported(lambda: args.run(args))


def push(args: argparse.Namespace) -> int:
    """`push FOLDER REPO_ID ...`, its arguments parsed by the launcher (`mamba_multimodal_cli.add_push_arguments`, so
    that `push --help` answers without torch; importing the launcher from here would make a cycle)."""
    return _reported(lambda: _push(args))


def space(args: argparse.Namespace) -> int:
    """`space FOLDER OUT`, its arguments parsed by the launcher (`mamba_multimodal_cli.add_space_arguments`)."""
    return _reported(lambda: _space(args))


def serve(args: argparse.Namespace) -> int:
    """`serve FOLDER [--port]`, its arguments parsed by the launcher."""
    return _reported(lambda: _serve(args))


def _reported(command) -> int:
    """The command's exit code; a `UsageError` as one line on stderr and exit code 2."""
    try:
        return command()
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
