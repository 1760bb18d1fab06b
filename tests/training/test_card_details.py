"""The model card of a `train` run states the full command that produced it (a token hidden), the split its metrics
were measured on and how many of that split's rows were scored."""

import shlex

import pytest
import yaml
from huggingface_hub import ModelCard
from sklearn.datasets import load_digits

import mamba_multimodal_cli
from mamba_multimodal.training.data import load_easy_vqa
from mamba_multimodal.training.recipes import easy_vqa_vlm

TINY = ["--max-steps", "1", "--max-train-samples", "4", "--max-eval-samples", "3", "--per-device-train-batch-size",
        "4", "--per-device-eval-batch-size", "4"]  # fmt: skip


def command_row(card: ModelCard) -> list[str]:
    """The card's "command" row, split as a shell would."""
    row = next(line for line in card.text.splitlines() if line.startswith("| command |"))
    return shlex.split(row.removeprefix("| command |").rstrip("| ").strip().strip("`"))


@pytest.mark.parametrize("task", ["image-classification", "vqa"])
def test_the_card_states_the_command_the_split_and_the_rows_scored(task, tmp_path, capsys):
    output = tmp_path / "run"
    options = ["--model", "tiny", "--learning-rate", "0.01", "--hub-token", "hf_secret", *TINY]
    if task == "vqa":  # a trained folder to start from, with LoRA
        model, processor = easy_vqa_vlm("tiny")
        model.save_pretrained(tmp_path / "base")
        processor.save_pretrained(tmp_path / "base")
        options[1] = str(tmp_path / "base")
        options.append("--lora")
    argv = ["train", *options[:2], task, *options[2:], "--output-dir", str(output)]  # the task after an option
    try:
        code = mamba_multimodal_cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code == 0, capsys.readouterr().err
    card = ModelCard.load(output / "README.md")
    typed = ["mamba-multimodal", "train", task, *options, "--output-dir", str(output)]
    shown = [("***" if item == "hf_secret" else item) for item in typed]
    assert command_row(card) == shown
    assert "hf_secret" not in card.content
    if task == "vqa":
        rows, data = len(load_easy_vqa(("test",))["test"]), "easy-vqa"  # 9,673
        measured = f"Measured on 3 of {rows:,} questions of the test split of {data}."
    else:
        rows, data = -(-len(load_digits().target) * 2 // 10), "digits"  # 20% of the 1,797 digits, rounded up
        measured = f"Measured on 3 of {rows:,} images of the test split of {data}."
    assert measured in card.text
    assert all(result.dataset_name == f"{data} (test split)" for result in card.data.eval_results)
    assert all(result.dataset_split == "test" for result in card.data.eval_results)
    check_eval_results(output, card, data, command=shlex.join(shown))


def check_eval_results(output, card: ModelCard, data: str, command: str) -> None:
    """`.eval_results/<data>.yaml` read by huggingface_hub's own parser: the card's metrics (model-index), one entry
    per metric, on the test split, with the command."""
    hub = pytest.importorskip("huggingface_hub")
    if not hasattr(hub, "parse_eval_result_entries"):
        pytest.skip(f"huggingface_hub {hub.__version__} has no .eval_results parser (2.4+)")
    [path] = (output / ".eval_results").iterdir()
    assert path.name == f"{data}.yaml"
    entries = hub.parse_eval_result_entries(yaml.safe_load(path.read_text()))
    expected = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert {entry.task_id: entry.value for entry in entries} == expected and len(entries) == len(expected)
    for entry, result in zip(entries, card.data.eval_results, strict=True):
        assert entry.dataset_id == data and entry.notes == f"{result.metric_name}; test split; {command}"
