"""The demo: the per-type VQA table, and a quick run of the whole demo (same code path, a few steps and questions)."""

import json

import datasets
import PIL.Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from mamba_multimodal.processing.processing_vlm_mamba import vqa_prompt
from mamba_multimodal.training import demo
from mamba_multimodal.training.data import load_easy_vqa
from mamba_multimodal.training.metrics import vqa_accuracy
from mamba_multimodal.training.tasks import generate_answers, vqa_metrics


def test_vqa_metrics_scores_each_question_type_apart():
    split = datasets.Dataset.from_dict({
        "answers": [["yes"], ["no"], ["circle"], ["red"], ["blue"]],
        "question_type": ["yes/no", "yes/no", "shape", "color", "color"],
    })  # fmt: skip
    metrics = vqa_metrics(["yes", "yes", "Circle.", "red", "green"], split)  # "Circle." normalises to circle
    assert metrics == {"VQA accuracy": 0.6, "VQA accuracy (color)": 0.5, "VQA accuracy (shape)": 1.0,
                       "VQA accuracy (yes/no)": 0.5}  # fmt: skip


def test_vqa_metrics_without_a_type_column_is_the_overall_accuracy():
    split = datasets.Dataset.from_dict({"answers": [["two"], ["2"]]})
    assert vqa_metrics(["2", "2"], split) == {"VQA accuracy": 1.0}  # the official rule maps "two" to "2"


def test_quick_demo_writes_every_artefact_and_a_well_formed_table(tmp_path, capsys):
    output = tmp_path / "demo"
    assert demo.main(["--quick", "--output-dir", str(output)]) == 0
    printed = capsys.readouterr().out
    folder = output / demo.FOLDER_NAME
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "metrics.json",
                 "training_curves.png", "trainer_state.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert not (folder / "adapter_config.json").exists()  # merged weights, not an adapter
    with PIL.Image.open(output / "examples.png") as drawing:
        assert drawing.size[0] > 500 and drawing.size[1] > 200
    summary = json.loads((output / "demo.json").read_text())

    results = printed.split("4/4 results", 1)[1]
    table = [line for line in results.splitlines() if line.startswith("| ")]
    assert table[0] == "| easy-VQA test split | questions | before LoRA | after LoRA |"
    rows = {cells[0]: cells[1:] for cells in (line.strip("| ").split(" | ") for line in table[1:5])}
    assert list(rows) == ["all questions", "yes/no", "shape", "color"]
    quick_questions = int(demo.QUICK_OPTIONS[demo.QUICK_OPTIONS.index("--max-eval-samples") + 1])
    assert int(rows["all questions"][0]) == quick_questions
    assert sum(int(count) for count, _, _ in list(rows.values())[1:]) == quick_questions
    assert rows["all questions"][2] == f"{100 * summary['after']['VQA accuracy']:.2f}%"
    assert "| total |" in results and f"mamba-multimodal push {folder} USER/NAME" in results

    # The saved folder, loaded as a user would, answers the quick test questions as the demo scored them.
    model, processor = AutoModelForImageTextToText.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    split = load_easy_vqa(("test",))["test"].select(range(quick_questions))
    answers = generate_answers(model, processor, split, [vqa_prompt(q) for q in split["question"]], max_new_tokens=8)
    assert vqa_accuracy(answers, split["answers"]) == summary["after"]["VQA accuracy"]
