"""The `mamba-multimodal` launcher: standard library only, so `--help` answers at once.

    mamba-multimodal train TASK [--model tiny|FOLDER|HUB_ID] [--dataset ...] [--recipe paper] [--output-dir ...]
    mamba-multimodal evaluate TASK --model FOLDER [--dataset ...]
    mamba-multimodal export-onnx MODEL OUTPUT
    mamba-multimodal push FOLDER USER/NAME [--private] [--revision BRANCH] [--space]
    mamba-multimodal space FOLDER OUT [--model-id USER/NAME];  mamba-multimodal serve FOLDER [--port 7860]
    mamba-multimodal train-sentiment DATA OUTPUT_DIR      (kept for compatibility: `train sentiment`)
    mamba-multimodal --version;  mamba-multimodal COMMAND --help;  mamba-multimodal train TASK --help-all

Options may come before or after the positional arguments, as with git or pip (`train --max-steps 2 vqa`).

`import mamba_multimodal` loads torch and transformers (seconds); this module imports them only to run a command
(`mamba_multimodal.training.cli`). The task list is the task table's, `mamba_multimodal/training/tasks.py`, which
imports the standard library only: read here from its file, without the package's `__init__`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import socket
import sys
import urllib.parse
from pathlib import Path

PROG = "mamba-multimodal"


def _package_module(relative_path: str, name: str):
    """A standard-library module of `mamba_multimodal` run from its file (importing the package would import torch),
    registered as `name`, not as the package's module, which a command imports later as usual."""
    package = importlib.util.find_spec("mamba_multimodal")
    path = Path(package.submodule_search_locations[0]) / relative_path
    spec = importlib.util.spec_from_file_location(name, path)
    sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _task_table():
    """`mamba_multimodal.training.tasks`, from its file."""
    return _package_module("training/tasks.py", "_mamba_multimodal_task_table")


TASK_TABLE = _task_table()
TASKS = {name: task.about for name, task in TASK_TABLE.TASKS.items()}  # {task: what it trains}
VERSION = _package_module("_version.py", "_mamba_multimodal_version").__version__
# Commands whose options `mamba_multimodal.training.cli` parses (and documents in its `COMMAND --help`).
PARSED_BY_THE_COMMAND = ("export-onnx", "train-sentiment")
HELP = {"-h", "--help", "--help-all"}


class OneLineParser(argparse.ArgumentParser):
    """argparse with a mistake reported as one line, `mamba-multimodal: error: ...`, and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message}\n")


def _task_epilog() -> str:
    return "tasks:\n" + "\n".join(f"  {task:<27}{about}" for task, about in TASKS.items())


def add_push_arguments(push: argparse.ArgumentParser) -> None:
    """`push FOLDER REPO_ID` options (here, so that `push --help` answers without torch)."""
    push.add_argument("folder", help="a folder written by save_pretrained or `train` (weights, bundle, card)")
    push.add_argument("repo_id", help="the Hub model repo, USER/NAME (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--revision", help="the branch to push to (created if missing; default main)")
    push.add_argument("--commit-message", help="default: Upload <model_type>")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--space", action="store_true", help="also create the Gradio Space USER/NAME that serves it")


def add_space_arguments(commands) -> None:
    """`space FOLDER OUT` and `serve FOLDER` (the Gradio app of `mamba_multimodal.sharing.space`)."""
    about = "write a Gradio Space (app.py, requirements.txt, README.md) that serves a saved folder's model"
    space = commands.add_parser("space", help=about, description=about)
    space.add_argument("folder", help="a folder written by save_pretrained or `train`")
    space.add_argument("output", help="the folder to write the Space into")
    space.add_argument("--model-id", help="the Hub id the app loads (default: FOLDER itself, to try it locally)")
    about = "run the Gradio app of a saved folder on http://127.0.0.1:PORT (needs mamba-multimodal[space])"
    serve = commands.add_parser("serve", help=about, description=about)
    serve.add_argument("folder", help="a folder written by save_pretrained or `train`")
    serve.add_argument("--port", type=int, default=7860, help="default 7860")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Train, evaluate and export Mamba-based multimodal models (Hugging Face Trainer underneath).",
        epilog=_task_epilog() + f"\n\n`{PROG} train TASK --help`: the task's options with its recipe's values "
        "(--help-all: every TrainingArguments field too).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for command, about in (
        ("train", "train a model for TASK; prints a metric table, writes the model and training_curves.png"),
        ("evaluate", "load a trained model (--model FOLDER) and print its metric table on --dataset"),
    ):
        sub = commands.add_parser(
            command, help=about, description=about, epilog=_task_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        sub.add_argument("task", choices=tuple(TASKS), metavar="TASK", help="one of: " + ", ".join(TASKS))
        sub.add_argument("options", nargs=argparse.REMAINDER, help="the task's options (TASK --help lists them)")
        sub.add_argument("--help-all", action="help", help="TASK --help-all: every option, TrainingArguments' too")
    for command, about in (
        ("export-onnx", "export an image classifier to ONNX, checked with onnxruntime"),
        ("train-sentiment", "train Coupled Mamba on MMSA / MulT features (older form of `train sentiment`)"),
    ):
        commands.add_parser(command, help=about, add_help=False)  # PARSED_BY_THE_COMMAND: its options, its --help
    about = "upload a saved folder (weights, processor, remote code, model card) to the Hub in one commit"
    add_push_arguments(commands.add_parser("push", help=about, description=about))
    add_space_arguments(commands)
    return parser


# huggingface_hub's `validate_repo_id` pattern with the namespace required (`mamba_multimodal.sharing.hub_id`, which
# this launcher cannot import before it sets HF_HUB_OFFLINE; tests/test_hub_id.py keeps the two in agreement).
_HUB_ID = re.compile(r"\b[\w\-.]{1,96}\b/\b[\w\-.]{1,96}\b", flags=re.ASCII)


def _may_be_hub_id(value: str) -> bool:
    """ "owner/name" as the Hub accepts it and no local path: what transformers and datasets would look up."""
    valid = _HUB_ID.fullmatch(value) and "--" not in value and ".." not in value and not value.endswith(".git")
    return bool(valid) and not os.path.exists(os.path.expanduser(value))


def offline_when_the_hub_is_unreachable(argv: list[str]) -> bool:
    """Sets HF_HUB_OFFLINE=1 (and HF_DATASETS_OFFLINE) when an argument may be a Hub id and the Hub's host does not
    resolve: without it huggingface_hub retries each request for ~30 s, printing a line per retry, before the one-line
    error; offline, the local cache still answers and a missing id is one line at once. Must run before
    huggingface_hub is imported (it reads the variables then). Returns whether it switched."""
    if os.environ.get("HF_HUB_OFFLINE") or not any(map(_may_be_hub_id, argv)):
        return False
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    try:
        socket.getaddrinfo(host, 443)
    except OSError:  # no network, or no DNS
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        return True
    return False


def task_first(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`train` / `evaluate` arguments with TASK first (options before it as with git: `train --max-steps 2 vqa`,
    the task table's `task_first`); TASK missing is one line unless help is asked for."""
    if argv[:1] not in (["train"], ["evaluate"]):
        return argv
    options = TASK_TABLE.task_first(argv[1:])
    if (not options or options[0].startswith("-")) and not HELP & set(options):
        parser.error(f"{argv[0]}: the following arguments are required: TASK (one of: {', '.join(TASKS)})")
    return [argv[0], *options]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = task_first(argv, parser)
    # help, an unknown command or task: answered here, without torch
    args, unparsed = parser.parse_known_args(argv)
    if unparsed and args.command not in PARSED_BY_THE_COMMAND:
        parser.error(f"unrecognized arguments: {' '.join(unparsed)}")
    pushes = args.command == "push" or {"--push_to_hub", "--push-to-hub"} & set(argv)
    if not pushes:  # a push needs the Hub, and says in one line when it cannot reach it
        offline_when_the_hub_is_unreachable(argv)
    from mamba_multimodal.training import cli

    parsed_here = {"push": cli.push, "space": cli.space, "serve": cli.serve}
    return parsed_here[args.command](args) if args.command in parsed_here else cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
