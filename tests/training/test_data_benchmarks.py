"""GQA, TextVQA and POPE loaders on fixtures in the official layouts: schemas, what each row holds, where the images
are looked for, the Hub fallback, and what a missing image does."""

import json
import logging

import datasets
import pytest
from fixtures_benchmarks import (
    GQA_QUESTIONS,
    POPE_QUESTIONS,
    TEXTVQA_OCR,
    TEXTVQA_QUESTIONS,
    write_gqa,
    write_pope,
    write_textvqa,
)

from mamba_multimodal.training.data import load_gqa, load_pope, load_textvqa
from mamba_multimodal.training.data.benchmarks import GQA_FEATURES, POPE_FEATURES, TEXTVQA_FEATURES


# ------------------------------------------------------------------------------------------------------- GQA
def test_gqa_testdev_balanced_rows_types_and_images(tmp_path):
    write_gqa(tmp_path)
    testdev = load_gqa(tmp_path)["testdev"]
    assert testdev.features == GQA_FEATURES
    # the question with isBalanced false is not scored by eval.py, so it is not loaded
    assert testdev["question_id"] == [row[0] for row in GQA_QUESTIONS]
    first = testdev[0]
    assert (first["image_id"], first["question"], first["answer"]) == ("n288870", "What color is the shirt?", "white")
    assert (first["structural_type"], first["semantic_type"], first["detailed_type"]) == ("query", "attr", "color")
    assert first["full_answer"] == "The answer is white." and first["image"].size == (8, 8)
    assert testdev[2]["image"].filename.endswith("images/n161313.jpg")


def test_gqa_finds_the_questions_folder_and_refuses_what_is_not_there(tmp_path):
    write_gqa(tmp_path / "questions", write_images=False)
    write_gqa(tmp_path, tier="val_balanced")
    (tmp_path / "val_balanced_questions.json").rename(tmp_path / "questions" / "val_balanced_questions.json")
    assert list(load_gqa(tmp_path)) == ["testdev", "validation"]
    assert list(load_gqa(tmp_path, splits=("val_balanced",))) == ["validation"]
    with pytest.raises(ValueError, match="splits must be among"):
        load_gqa(tmp_path, splits=("testdev",))
    with pytest.raises(FileNotFoundError, match=r"testdev_balanced_questions\.json"):
        load_gqa(tmp_path / "images")


def test_gqa_missing_image_both_ways(tmp_path, caplog):
    write_gqa(tmp_path)
    (tmp_path / "images" / "n161313.jpg").unlink()
    with pytest.raises(ValueError, match=r"image id n161313 of testdev_balanced_questions.json"):
        load_gqa(tmp_path)
    with caplog.at_level(logging.WARNING):
        testdev = load_gqa(tmp_path, on_missing_image="skip")["testdev"]
    assert "n161313" not in testdev["image_id"] and testdev.num_rows == 3
    assert "skipped 1 of 3 images" in caplog.text


# --------------------------------------------------------------------------------------------------- TextVQA
def test_textvqa_val_rows_ocr_tokens_and_train_images_folder(tmp_path):
    write_textvqa(tmp_path)
    validation = load_textvqa(tmp_path)["validation"]
    assert validation.features == TEXTVQA_FEATURES
    assert validation["question_id"] == [row[0] for row in TEXTVQA_QUESTIONS]
    assert validation["answers"] == [row[3] for row in TEXTVQA_QUESTIONS]  # raw, as released
    assert validation["ocr_tokens"] == [TEXTVQA_OCR[row[1]] for row in TEXTVQA_QUESTIONS]
    assert validation[0]["image"].filename.endswith("train_images/0054c91397f2fe05.jpg")
    assert validation[0]["image_classes"] == ["Mobile phone", "Text"]


def test_textvqa_without_the_ocr_file_test_split_and_images_dir(tmp_path):
    write_textvqa(tmp_path / "json", with_ocr=False, write_images=False)
    write_textvqa(tmp_path / "json", split="test", with_ocr=False, write_images=False)
    write_textvqa(tmp_path, write_images=True)  # train_images/ next to the json folder
    (tmp_path / "test_images").mkdir()
    dataset_dict = load_textvqa(tmp_path / "json", on_missing_image="skip")
    assert list(dataset_dict) == ["validation", "test"]
    assert dataset_dict["validation"]["ocr_tokens"] == [[], [], []] and dataset_dict["test"].num_rows == 0
    elsewhere = load_textvqa(tmp_path / "json", splits=("val",), images_dir=tmp_path)["validation"]
    assert elsewhere.num_rows == 3
    with pytest.raises(FileNotFoundError, match=r"TextVQA_0\.5\.1_train\.json"):
        load_textvqa(tmp_path / "json", splits=("train",))


def test_textvqa_missing_image_raises_naming_it(tmp_path):
    write_textvqa(tmp_path)
    (tmp_path / "train_images" / "00685bc495504d61.jpg").unlink()
    with pytest.raises(ValueError, match=r"image id 00685bc495504d61 of TextVQA_0.5.1_val.json"):
        load_textvqa(tmp_path)


def test_textvqa_hub_layout_goes_through_load_dataset(tmp_path):
    table = datasets.Dataset.from_dict({"question_id": [1], "question": ["what?"], "answers": [["a"] * 10],
                                        "ocr_tokens": [["A"]]})  # fmt: skip
    (tmp_path / "data").mkdir()
    table.to_parquet(str(tmp_path / "data" / "validation-00000.parquet"))
    assert load_textvqa(tmp_path)["validation"][0]["ocr_tokens"] == ["A"]


# ------------------------------------------------------------------------------------------------------ POPE
def test_pope_three_files_in_one_test_split_with_their_category(tmp_path):
    written = write_pope(tmp_path)
    test = load_pope(tmp_path)["test"]
    assert test.features == POPE_FEATURES
    assert test["category"] == [name for name in ("adversarial", "popular", "random") for _ in POPE_QUESTIONS[name]]
    expected = [(row["question_id"], row["text"], row["label"]) for name in written for row in written[name]]
    assert list(zip(test["question_id"], test["question"], test["answer"], strict=True)) == expected
    assert test[0]["image_id"] == 310196 and test[0]["image_file"] == "COCO_val2014_000000310196.jpg"
    assert test[0]["image"].filename.endswith("val2014/COCO_val2014_000000310196.jpg")


def test_pope_categories_coco_folder_and_images_dir(tmp_path):
    write_pope(tmp_path / "pope")
    test = load_pope(tmp_path / "pope" / "coco", categories=("random",))["test"]  # val2014 next to coco/
    assert set(test["category"]) == {"random"} and test.num_rows == 4
    moved = tmp_path / "COCO" / "val2014"
    moved.parent.mkdir()
    (tmp_path / "pope" / "val2014").rename(moved)
    assert load_pope(tmp_path / "pope", images_dir=moved)["test"].num_rows == 12
    with pytest.raises(ValueError, match="categories must be among"):
        load_pope(tmp_path / "pope", categories=("hard",))


def test_pope_missing_image_both_ways(tmp_path, caplog):
    write_pope(tmp_path)
    (tmp_path / "val2014" / "COCO_val2014_000000210789.jpg").unlink()
    with pytest.raises(ValueError, match=r"image id 210789 of POPE: .*COCO_val2014_000000210789.jpg is missing"):
        load_pope(tmp_path)
    with caplog.at_level(logging.WARNING):
        test = load_pope(tmp_path, on_missing_image="skip")["test"]
    assert set(test["image_id"]) == {310196} and test.num_rows == 6


def test_pope_rejects_a_row_that_names_no_coco_image(tmp_path):
    write_pope(tmp_path)
    path = tmp_path / "coco" / "coco_pope_random.json"
    path.write_text(path.read_text() + json.dumps({"question_id": 5, "image": "x.png", "text": "?", "label": "no"}))
    with pytest.raises(ValueError, match=r"coco_pope_random\.json line 5"):
        load_pope(tmp_path)


def test_pope_hub_layout_goes_through_load_dataset(tmp_path):
    table = datasets.Dataset.from_dict({"question_id": ["1"], "question": ["Is there a car in the image?"],
                                        "answer": ["yes"], "category": ["adversarial"]})  # fmt: skip
    (tmp_path / "data").mkdir()
    table.to_parquet(str(tmp_path / "data" / "test-00000.parquet"))
    assert load_pope(tmp_path)["test"][0]["category"] == "adversarial"
