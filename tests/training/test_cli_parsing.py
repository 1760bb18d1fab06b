"""`mamba-multimodal` parses as git or pip do: `COMMAND --help` everywhere, options before or after the positional
arguments, a short `train TASK --help` with the recipe's values (`--help-all`: every TrainingArguments field),
`--version`."""

import dataclasses
import re

import pytest
from cli_run import run
from transformers import TrainingArguments

import mamba_multimodal_cli
from mamba_multimodal._version import __version__
from mamba_multimodal.training import cli, flow
from mamba_multimodal.training.tasks import TASKS


@pytest.mark.parametrize("command", ["train", "evaluate", "export-onnx", "train-sentiment", "push", "space", "serve"])
def test_every_command_answers_help(command, capsys):
    code, out, err = run([command, "--help"], capsys)
    assert code == 0 and out.startswith(f"usage: mamba-multimodal {command}"), err


def test_version_is_the_packages(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"mamba-multimodal {__version__}"


def handed_on(argv, monkeypatch) -> list[str]:
    """The arguments the launcher hands to `training.cli.main` (which would import the data and train)."""
    received = []
    monkeypatch.setattr(cli, "main", lambda argv: received.append(argv) or 0)
    assert mamba_multimodal_cli.main(argv) == 0
    return received[0]


@pytest.mark.parametrize(
    ("mixed", "ordered"),
    [
        (["train", "--max-steps", "2", "vqa"], ["train", "vqa", "--max-steps", "2"]),
        (["train", "--lora", "vqa", "--max-steps", "2"], ["train", "vqa", "--lora", "--max-steps", "2"]),
        (["train", "--output-dir", "caption", "vqa"], ["train", "vqa", "--output-dir", "caption"]),
        (["train", "--output-dir=caption", "caption"], ["train", "caption", "--output-dir=caption"]),
        (["evaluate", "--model", "runs/vqa", "vqa", "--max-eval-samples", "4"],
         ["evaluate", "vqa", "--model", "runs/vqa", "--max-eval-samples", "4"]),
    ],
)  # fmt: skip
def test_train_and_evaluate_take_options_before_the_task(mixed, ordered, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # runs/vqa: a folder here
    (tmp_path / "runs" / "vqa").mkdir(parents=True)
    got = handed_on(mixed, monkeypatch)
    assert got == handed_on(ordered, monkeypatch)
    parsed = flow.parse(got[0], got[1:])
    assert parsed[0].name == ordered[1]
    assert flow.parse(mixed[0], mixed[1:])[1:] == parsed[1:]  # flow.parse itself takes the task anywhere


@pytest.mark.parametrize(
    ("mixed", "ordered"),
    [
        (["export-onnx", "--image-size", "64", "in", "out.onnx"], ["export-onnx", "in", "out.onnx", "--image-size",
                                                                   "64"]),
        (["export-onnx", "in", "--static-batch", "out.onnx"], ["export-onnx", "in", "out.onnx", "--static-batch"]),
        (["train-sentiment", "--max-steps", "3", "--unaligned", "data.pkl", "out"],
         ["train-sentiment", "data.pkl", "out", "--max-steps", "3", "--unaligned"]),
    ],
)  # fmt: skip
def test_export_onnx_and_train_sentiment_take_options_before_their_arguments(mixed, ordered, monkeypatch):
    got = handed_on(mixed, monkeypatch)
    assert got == mixed
    parse = lambda argv: vars(cli.build_parser().parse_args(argv))  # noqa: E731
    assert parse(got) == parse(ordered)


def option_help(text: str, option: str) -> str:
    """The help entry of `option` (its line and the indented lines under it), whitespace collapsed."""
    match = re.search(rf"^  {re.escape(option)}\b.*?(?=^  -|\Z|^\S)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, option
    return " ".join(match.group(0).split())


@pytest.mark.parametrize(("task", "recipe"), [("vqa", "cpu"), ("vqa", "paper"), ("image-classification", "paper")])
def test_a_tasks_help_is_short_and_shows_the_recipes_values(task, recipe, capsys):
    code, short, _ = run(["train", task, "--recipe", recipe, "--help"], capsys)
    assert code == 0 and "--help-all" in short
    values = {**flow.COMMON_TRAINING, **TASKS[task].recipes[recipe].values}
    if "global_batch_size" in values:  # one process, no accumulation: the whole batch on this device
        values["per_device_train_batch_size"] = values.pop("global_batch_size")
    for name, value in values.items():
        assert f"(default: {value})" in option_help(short, f"--{name}"), name
    assert "(default: 7)" in option_help(run(["train", task, "--help", "--seed", "7"], capsys)[1], "--seed")
    code, every, _ = run(["train", task, "--recipe", recipe, "--help-all"], capsys)
    fields = [field.name for field in dataclasses.fields(TrainingArguments) if field.init]
    assert code == 0 and all(f"--{name}" in every for name in fields)
    assert f"(default: {values['learning_rate']})" in option_help(every, "--learning_rate")
    assert len(short.splitlines()) < len(every.splitlines()) / 3
    assert not {"--fsdp", "--deepspeed", "--torch_compile"} & set(short.split())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--max-steps", "2"], "TASK"),
        (["train", "--max-steps", "2", "vqq"], "'vqq'"),
        (["evaluate", "--lora"], "TASK"),
        (["--no-such-option", "train", "vqa"], "--no-such-option"),
    ],
)
def test_a_misplaced_or_missing_task_is_one_line(argv, named, capsys):
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("mamba-multimodal: error: ") and named in lines[0], lines[0]
