"""The model card of a `train` run states the full command that produced it (a token hidden), the split its metrics
were measured on and how many of that split's rows were scored."""

import shlex

import pytest
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
    assert command_row(card) == [("***" if item == "hf_secret" else item) for item in typed]
    assert "hf_secret" not in card.content
    if task == "vqa":
        rows, data = len(load_easy_vqa(("test",))["test"]), "easy-vqa"  # 9,673
        measured = f"Measured on 3 of {rows:,} questions of the test split of {data}."
    else:
        rows, data = -(-len(load_digits().target) * 2 // 10), "digits"  # 20% of the 1,797 digits, rounded up
        measured = f"Measured on 3 of {rows:,} images of the test split of {data}."
    assert measured in card.text
    assert all(result.dataset_name == f"{data} (test split)" for result in card.data.eval_results)
