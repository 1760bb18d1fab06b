"""The demo's pieces: the per-type VQA table."""

import datasets

from mamba_multimodal.training.tasks import vqa_metrics


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
