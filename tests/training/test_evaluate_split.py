"""`evaluate` reads only the split it scores: official VQA v2 / COCO files whose train split is unreadable or lacks
its images (on VQA v2, 443,757 questions whose image files are all checked) still evaluate."""

import pytest
from cli_run import run
from fixtures_vlm import VQA_IMAGE_IDS, write_coco_captions, write_image, write_vqa

from mamba_multimodal import VLMambaForImageTextClassification
from mamba_multimodal.training.recipes import easy_vqa_vlm


def saved_vlm(folder, task: str):
    """An untrained tiny VLM-Mamba (a yes / no classifier for image-text-classification) and its processor."""
    if task == "image-text-classification":
        model, processor = easy_vqa_vlm("tiny", VLMambaForImageTextClassification, num_labels=2,
                                        id2label={0: "yes", 1: "no"})  # fmt: skip
    else:
        model, processor = easy_vqa_vlm("tiny")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def official_files(root, task: str, train: str):
    """VQA v2 (val2014) or COCO captions (val2014) files, with a train split that is `train`: "unreadable" (a
    truncated JSON file) or "without images" (its image files missing)."""
    root.mkdir()
    if task == "caption":
        write_coco_captions(root, "val", 2014, VQA_IMAGE_IDS["val2014"])
        write_coco_captions(root, "train", 2014, VQA_IMAGE_IDS["train2014"], write_images=False)
        train_file = root / "annotations" / "captions_train2014.json"
    else:
        write_vqa(root, "val2014")
        write_vqa(root, "train2014", write_images=False)
        train_file = root / "v2_OpenEnded_mscoco_train2014_questions.json"
    if train == "unreadable":
        train_file.write_text(train_file.read_text()[:100])
    return root


@pytest.mark.parametrize("train", ["unreadable", "without images"])
@pytest.mark.parametrize(("task", "metric"), [("vqa", "VQA accuracy"), ("caption", "CIDEr"),
                                              ("image-text-classification", "accuracy")])  # fmt: skip
def test_evaluate_reads_only_the_split_it_scores(task, metric, train, tmp_path, capsys):
    data = official_files(tmp_path / "data", task, train)
    model = saved_vlm(tmp_path / "model", task)
    capsys.readouterr()
    code, out, err = run(["evaluate", task, "--model", str(model), "--dataset", str(data)], capsys)
    assert code == 0, err
    rows = len(VQA_IMAGE_IDS["val2014"]) * (5 if task == "caption" else 3)  # the validation split: no train split
    assert f"data: {data}, {rows} eval examples" in out and f"| {metric}" in out
    code, _, err = run(["train", task, "--model", str(model), "--dataset", str(data), "--max-steps", "1"], capsys)
    assert code == 2 and "--dataset" in err  # training needs the train split, and says so in one line


def test_evaluate_image_classification_on_an_image_folder_without_a_train_split(tmp_path, capsys):
    from mamba_multimodal import MambaVisionForImageClassification
    from mamba_multimodal.configuration.configuration_mambavision import MambaVisionConfig
    from mamba_multimodal.processing.image_processing_mambavision import MambaVisionImageProcessor

    for index, label in enumerate(["circle", "square"] * 3):  # test/<class>/<image>, as imagefolder reads it
        write_image(tmp_path / "data" / "test" / label / f"{index}.jpg", index)
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", id2label={0: "circle", 1: "square"})
    MambaVisionForImageClassification(config).save_pretrained(tmp_path / "model")
    MambaVisionImageProcessor.from_model_config(config).save_pretrained(tmp_path / "model")
    argv = ["evaluate", "image-classification", "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data")]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "6 eval examples" in out and "| accuracy" in out
