"""COCO captions, Karpathy, VQA v2 and easy-VQA loaders: schemas, counts, answers, split membership, and what a
missing or corrupt image does, on fixtures in the official layouts (and on the real easy-vqa package)."""

import logging
from pathlib import Path

import datasets
import PIL.Image
import pytest
from fixtures_vlm import (
    CAPTIONS_PER_IMAGE,
    KARPATHY_SPLITS,
    QUESTIONS_PER_IMAGE,
    VQA_IMAGE_IDS,
    caption_text,
    coco_file_name,
    vqa_answers,
    write_coco_captions,
    write_karpathy,
    write_vqa,
)

from mamba_multimodal.training.data import (
    easy_vqa_answers,
    load_coco_captions,
    load_coco_karpathy,
    load_easy_vqa,
    load_vqa_v2,
)
from mamba_multimodal.training.data.easy_vqa import (
    CAPTION_FEATURES,
    EASY_VQA_SHAPES,
    easy_vqa_image_labels,
    load_easy_vqa_captions,
)
from mamba_multimodal.training.metrics import vqa_accuracy

INT, STRING = datasets.Value("int64"), datasets.Value("string")
VQA_COLUMNS = {
    "question_id": INT, "image_id": INT, "image": datasets.Image(), "question": STRING,
    "answers": datasets.List(STRING), "multiple_choice_answer": STRING, "answer_type": STRING, "question_type": STRING,
}  # fmt: skip


def corrupt(path):
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


# ------------------------------------------------------------------------------------------- COCO captions
@pytest.mark.parametrize("year", [2014, 2017])
def test_coco_captions_one_row_per_caption(tmp_path, year):
    write_coco_captions(tmp_path, "train", year, [9, 25, 30])
    write_coco_captions(tmp_path, "val", year, [42, 73])
    dataset_dict = load_coco_captions(tmp_path)
    assert set(dataset_dict) == {"train", "validation"}
    train = dataset_dict["train"]
    assert train.features == datasets.Features({
        "image_id": INT, "caption_id": INT, "caption": STRING, "image": datasets.Image(), "file_name": STRING,
        "width": datasets.Value("int32"), "height": datasets.Value("int32"),
    })  # fmt: skip
    assert train.num_rows == 3 * CAPTIONS_PER_IMAGE and dataset_dict["validation"].num_rows == 2 * CAPTIONS_PER_IMAGE
    row = next(r for r in train if r["caption_id"] == 1000 * 25 + 2)
    assert row["image_id"] == 25 and row["caption"] == caption_text(25, 2)
    assert row["file_name"] == coco_file_name(25, f"train{year}") and (row["width"], row["height"]) == (8, 9)
    assert isinstance(row["image"], PIL.Image.Image) and row["image"].size == (8, 8)  # decoded from the file


def test_coco_captions_grouped_by_image(tmp_path):
    write_coco_captions(tmp_path, "val", 2017, [42, 73, 74])
    validation = load_coco_captions(tmp_path, group_by_image=True)["validation"]
    assert validation.num_rows == 3 and validation["image_id"] == [42, 73, 74]
    assert validation.features["captions"] == datasets.List(STRING)
    assert validation[1]["captions"] == [caption_text(73, index) for index in range(CAPTIONS_PER_IMAGE)]
    assert validation[1]["caption_ids"] == [73000 + index for index in range(CAPTIONS_PER_IMAGE)]


def test_coco_captions_from_one_file_and_year_selection(tmp_path):
    write_coco_captions(tmp_path, "val", 2014, [1])
    write_coco_captions(tmp_path, "val", 2017, [42, 73])
    with pytest.raises(ValueError, match=r"several COCO years.*year="):
        load_coco_captions(tmp_path)
    assert load_coco_captions(tmp_path, year=2014)["validation"]["image_id"] == [1] * CAPTIONS_PER_IMAGE
    single = load_coco_captions(tmp_path / "annotations" / "captions_val2017.json")
    assert list(single) == ["validation"] and single["validation"].num_rows == 2 * CAPTIONS_PER_IMAGE


def test_missing_coco_image_raises_naming_its_id_and_path(tmp_path):
    write_coco_captions(tmp_path, "val", 2017, [42, 73])
    (tmp_path / "val2017" / coco_file_name(73, "val2017")).unlink()
    with pytest.raises(ValueError, match=r"image id 73 of captions_val2017.json: .*000000000073\.jpg is missing"):
        load_coco_captions(tmp_path)


def test_missing_coco_image_skipped_with_a_warning(tmp_path, caplog):
    write_coco_captions(tmp_path, "val", 2017, [42, 73, 74])
    (tmp_path / "val2017" / coco_file_name(73, "val2017")).unlink()
    with caplog.at_level(logging.WARNING):
        validation = load_coco_captions(tmp_path, on_missing_image="skip")["validation"]
    assert sorted(set(validation["image_id"])) == [42, 74] and validation.num_rows == 2 * CAPTIONS_PER_IMAGE
    assert "skipped 1 of 3 images" in caplog.text and "first ids: [73]" in caplog.text


def test_corrupt_coco_image_named_at_load_time_with_verify_images(tmp_path):
    write_coco_captions(tmp_path, "val", 2017, [42, 73])
    corrupt(tmp_path / "val2017" / coco_file_name(42, "val2017"))
    validation = load_coco_captions(tmp_path)["validation"]  # existence only: loads, and the decode fails later
    with pytest.raises(OSError):  # PIL's error, from datasets.Image: it may not name the file
        validation[0]["image"]
    with pytest.raises(ValueError, match=r"image id 42 .* is unreadable"):
        load_coco_captions(tmp_path, verify_images=True)
    kept = load_coco_captions(tmp_path, verify_images=True, on_missing_image="skip")["validation"]
    assert set(kept["image_id"]) == {73}


def test_bad_on_missing_image_value_is_refused(tmp_path):
    with pytest.raises(ValueError, match="on_missing_image must be one of raise, skip, got 'ignore'"):
        load_coco_captions(tmp_path, on_missing_image="ignore")


def test_hub_style_dataset_with_image_and_caption_columns(tmp_path):
    # a local parquet folder goes through datasets.load_dataset, as a Hub id would (no network in tests)
    image_path = tmp_path / "a.jpg"
    PIL.Image.new("RGB", (4, 4)).save(image_path)
    features = datasets.Features({"image": datasets.Image(), "sentences": datasets.List(STRING), "cocoid": INT})
    table = datasets.Dataset.from_dict(
        {"image": [str(image_path)], "sentences": [["a black square", "dark"]], "cocoid": [7]}, features=features
    )
    (tmp_path / "hub" / "data").mkdir(parents=True)
    table.cast_column("image", datasets.Image()).to_parquet(str(tmp_path / "hub" / "data" / "test-00000.parquet"))
    loaded = load_coco_captions(tmp_path / "hub")
    assert list(loaded) == ["test"] and loaded["test"].column_names == ["image", "captions", "cocoid"]
    assert loaded["test"][0]["captions"] == ["a black square", "dark"]
    with pytest.raises(ValueError, match="pass caption_column="):
        load_coco_captions(tmp_path / "hub", caption_column="nope")


# ------------------------------------------------------------------------------------------------- Karpathy
def test_karpathy_splits_train_is_train_plus_restval(tmp_path):
    write_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    dataset_dict = load_coco_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    members = {split: sorted(set(dataset["image_id"])) for split, dataset in dataset_dict.items()}
    assert members == {"train": [9, 25, 42], "validation": [73, 74], "test": [133]}
    assert dataset_dict["train"].num_rows == 3 * CAPTIONS_PER_IMAGE
    row = dataset_dict["train"].filter(lambda r: r["image_id"] == 42)[0]
    assert row["karpathy_split"] == "restval" and row["file_name"] == "COCO_val2014_000000000042.jpg"
    assert row["tokens"] == ["a", "photo", "number", "0", "of", "image", "42"] and row["caption"] == caption_text(42, 0)
    assert row["image"].size == (8, 8)


def test_karpathy_grouped_by_image(tmp_path):
    write_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    test = load_coco_karpathy(tmp_path / "dataset_coco.json", tmp_path, group_by_image=True)["test"]
    assert test.num_rows == 1 and len(test[0]["captions"]) == CAPTIONS_PER_IMAGE
    assert test.features["tokens"] == datasets.List(datasets.List(STRING))
    assert test[0]["caption_ids"] == [10 * list(KARPATHY_SPLITS).index(133) + i for i in range(CAPTIONS_PER_IMAGE)]


def test_karpathy_missing_image_both_ways(tmp_path, caplog):
    write_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    (tmp_path / "val2014" / "COCO_val2014_000000000074.jpg").unlink()
    with pytest.raises(ValueError, match=r"image id 74 .*COCO_val2014_000000000074\.jpg is missing"):
        load_coco_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    with caplog.at_level(logging.WARNING):
        skipped = load_coco_karpathy(tmp_path / "dataset_coco.json", tmp_path, on_missing_image="skip")
    assert sorted(set(skipped["validation"]["image_id"])) == [73] and "first ids: [74]" in caplog.text


# --------------------------------------------------------------------------------------------------- VQA v2
def test_vqa_v2_schema_counts_and_answers(tmp_path):
    written = write_vqa(tmp_path, "val2014")
    validation = load_vqa_v2(tmp_path)["validation"]
    assert validation.features == datasets.Features(VQA_COLUMNS)
    assert validation.num_rows == len(VQA_IMAGE_IDS["val2014"]) * QUESTIONS_PER_IMAGE
    row = validation[4]
    question = written["questions"][4]
    assert (row["question_id"], row["image_id"], row["question"]) == (
        question["question_id"], question["image_id"], question["question"],
    )  # fmt: skip
    assert row["answers"] == vqa_answers(question["question_id"])  # back in answer_id order
    assert row["multiple_choice_answer"] == written["annotations"][4]["multiple_choice_answer"]
    assert (row["answer_type"], row["question_type"]) == ("yes/no", "is there a")
    assert row["image"].size == (8, 8)
    # the answers column is what vqa_accuracy takes: k humans saying "yes" score 0.3 k (k <= 3), 1.0 above
    expected = [
        min(1.0, 0.3 * answers.count("yes")) if answers.count("yes") <= 3 else 1.0 for answers in validation["answers"]
    ]
    assert vqa_accuracy(["yes"] * validation.num_rows, validation["answers"]) == pytest.approx(sum(expected) / 6)


def test_vqa_v2_official_folders_and_test_dev_without_annotations(tmp_path):
    write_vqa(tmp_path, "train2014")
    write_vqa(tmp_path, "test-dev2015", with_annotations=False)
    write_vqa(tmp_path, "test2015", with_annotations=False, write_images=False)
    for name in tmp_path.glob("v2_OpenEnded_*.json"):  # the VQA API layout: Questions/ and Annotations/
        (tmp_path / "Questions").mkdir(exist_ok=True)
        name.rename(tmp_path / "Questions" / name.name)
    dataset_dict = load_vqa_v2(tmp_path)
    assert list(dataset_dict) == ["train", "testdev", "test"]
    testdev = dataset_dict["testdev"]
    assert testdev.num_rows == 2 * QUESTIONS_PER_IMAGE and set(testdev["image_id"]) == {1, 2}
    assert testdev[0]["answers"] == [] and testdev[0]["multiple_choice_answer"] == ""
    assert testdev[0]["image"].size == (8, 8)  # test-dev questions are about the test2015 images
    assert list(load_vqa_v2(tmp_path, splits=("train2014",))) == ["train"]
    with pytest.raises(FileNotFoundError, match="val2014"):
        load_vqa_v2(tmp_path, splits=("val2014",))
    with pytest.raises(ValueError, match="splits must be among"):
        load_vqa_v2(tmp_path, splits=("val",))


def test_vqa_v2_missing_image_both_ways(tmp_path, caplog):
    write_vqa(tmp_path, "val2014")
    (tmp_path / "Images" / "mscoco" / "val2014" / "COCO_val2014_000000000073.jpg").unlink()
    with pytest.raises(ValueError, match=r"image id 73 of v2_OpenEnded_mscoco_val2014_questions.json"):
        load_vqa_v2(tmp_path)
    with caplog.at_level(logging.WARNING):
        validation = load_vqa_v2(tmp_path, on_missing_image="skip")["validation"]
    assert set(validation["image_id"]) == {42} and validation.num_rows == QUESTIONS_PER_IMAGE
    assert "skipped 1 of 2 images" in caplog.text and "first ids: [73]" in caplog.text


@pytest.mark.parametrize(
    ("content", "error"), [(b"not an image", "UnidentifiedImageError"), (b"\xff\xd8\xff\xe0 truncated", "OSError")]
)
def test_vqa_v2_corrupt_image_error_names_the_id(tmp_path, content, error):
    write_vqa(tmp_path, "val2014")
    (tmp_path / "Images" / "mscoco" / "val2014" / "COCO_val2014_000000000042.jpg").write_bytes(content)
    with pytest.raises(ValueError, match=rf"image id 42 .*000000000042\.jpg is unreadable \({error}"):
        load_vqa_v2(tmp_path, verify_images=True)


def test_vqa_v2_hub_layout_answers_become_strings(tmp_path):
    answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(vqa_answers(5))]
    table = datasets.Dataset.from_dict({"question_id": [5], "question": ["is it?"], "answers": [answers]})
    (tmp_path / "data").mkdir()
    table.to_parquet(str(tmp_path / "data" / "validation-00000.parquet"))
    validation = load_vqa_v2(tmp_path)["validation"]
    assert validation.features["answers"] == datasets.List(STRING) and validation[0]["answers"] == vqa_answers(5)


# ------------------------------------------------------------------------------------ easy-VQA (real package)
def test_easy_vqa_counts_schema_and_answers():
    pytest.importorskip("easy_vqa")
    dataset_dict = load_easy_vqa()
    train, test = dataset_dict["train"], dataset_dict["test"]
    assert (train.num_rows, test.num_rows) == (38_575, 9_673)
    assert (len(set(train["image_id"])), len(set(test["image_id"]))) == (4_000, 1_000)
    assert train.features == datasets.Features(VQA_COLUMNS)
    answers = easy_vqa_answers()
    assert len(answers) == 13 and set(train["multiple_choice_answer"]) == set(answers)
    assert all(len(a) == 1 for a in test["answers"]) and test["answers"][0] == [test["multiple_choice_answer"][0]]
    types = dict(zip(train["multiple_choice_answer"], train["question_type"], strict=True))
    assert types["yes"] == "yes/no" and types["circle"] == "shape" and types["teal"] == "color"
    image = test[0]["image"]
    assert image.size == (64, 64) and image.format == "PNG"
    assert vqa_accuracy(test["multiple_choice_answer"], test["answers"]) == 1.0


def _answer_from_labels(question: str, shape: str, color: str) -> str:
    """What a question about an image of a `color` `shape` must be answered: a rule per question form of easy-VQA."""
    words = question.rstrip("?").split()
    if words[0] == "what":
        return color if "color" in words else shape
    colors = set(easy_vqa_answers()) - set(EASY_VQA_SHAPES) - {"yes", "no"}
    named = next(word for word in words if word in EASY_VQA_SHAPES or word in colors)
    present = named in (shape, color)
    negated = "not" in words or "no" in words
    return "yes" if present != negated else "no"


def test_easy_vqa_image_labels_answer_every_question_about_their_image():
    pytest.importorskip("easy_vqa")
    import easy_vqa

    for split, labelled in (("train", 3_542), ("test", 880)):
        labels = easy_vqa_image_labels(split)
        assert len(labels) == labelled
        questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
        checked = 0
        for question, answer, image_id in zip(questions, answers, image_ids, strict=True):
            if image_id in labels:
                assert _answer_from_labels(question, **labels[image_id]) == answer, (split, image_id, question)
                checked += 1
        assert checked > 0.85 * len(questions)


def test_easy_vqa_captions_describe_each_labelled_image():
    pytest.importorskip("easy_vqa")
    captions = load_easy_vqa_captions(("test",))["test"]
    labels = easy_vqa_image_labels("test")
    assert captions.num_rows == len(labels) and captions.features == CAPTION_FEATURES
    row = captions[0]
    assert row["caption"] == f"a {row['color']} {row['shape']}" and labels[row["image_id"]]["shape"] == row["shape"]
    assert row["image"].size == (64, 64)
    with pytest.raises(ValueError, match="splits must be a non-empty tuple"):
        load_easy_vqa_captions("train")


def test_easy_vqa_rejects_unknown_splits():
    with pytest.raises(ValueError, match="splits must be a non-empty tuple of train, test"):
        load_easy_vqa(("validation",))


# ------------------------------------------------------------------------------------------------ decoded once
def easy_vqa_questions() -> datasets.Dataset:
    pytest.importorskip("easy_vqa")
    return load_easy_vqa(("test",))["test"].select(range(40))  # ten or so questions per image


def counted_decodes(monkeypatch) -> list[str]:
    """The path of every image `datasets.Image` decodes from now on (the decoder `DecodedImages` calls)."""
    decoded = []
    original = datasets.Image.decode_example
    monkeypatch.setattr(datasets.Image, "decode_example", lambda self, value, **kw: decoded.append(value["path"])
                        or original(self, value, **kw))  # fmt: skip
    return decoded


def test_decoded_once_reads_the_same_images_decoding_each_file_once(monkeypatch):
    from mamba_multimodal.training.data.images import DecodedImages, decoded_once

    questions = easy_vqa_questions()
    decoded = counted_decodes(monkeypatch)
    once = decoded_once(questions)
    for _ in range(2):  # two epochs, rows one by one and in batches
        rows, batch = [once[index] for index in range(len(once))], once[:]
    paths = [image["path"] for image in questions.cast_column("image", datasets.Image(decode=False))["image"]]
    assert sorted(decoded) == sorted(set(paths)) and len(set(paths)) < len(paths)
    assert [row["question"] for row in rows] == batch["question"] == questions["question"]
    for row, image, path in zip(rows, batch["image"], paths, strict=True):
        assert row["image"].tobytes() == image.tobytes() == PIL.Image.open(path).tobytes()

    one_image = questions.cast_column("image", datasets.Image(decode=False))[0]["image"]
    size = PIL.Image.open(one_image["path"])
    budget = DecodedImages(max_bytes=2 * size.width * size.height * len(size.getbands()))
    images = [budget.image({"path": path, "bytes": None}) for path in dict.fromkeys(paths)]
    assert len(budget.images) == 2 and budget.bytes <= budget.max_bytes  # the least recently used went first
    assert list(budget.images.values()) == images[-2:]
    embedded = {"path": None, "bytes": Path(one_image["path"]).read_bytes()}
    assert budget.image(embedded) is not budget.image(embedded) and budget.image(None) is None


def test_the_training_split_decodes_an_image_column_of_any_name_once_per_file(monkeypatch):
    """What Trainer reads: every decoded Image column, here "picture", through `decoded_once`; a column declared
    Image(decode=False) stays {"path", "bytes"}."""
    from mamba_multimodal.training import flow

    questions = easy_vqa_questions().rename_column("image", "picture")
    paths = [image["path"] for image in questions.cast_column("picture", datasets.Image(decode=False))["picture"]]
    questions = questions.add_column("raw", paths).cast_column("raw", datasets.Image(decode=False))
    decoded = counted_decodes(monkeypatch)
    once = flow._read_every_epoch(questions)
    for _ in range(2):  # two epochs
        rows = [once[index] for index in range(len(once))]
    assert sorted(decoded) == sorted(set(paths)) and len(set(paths)) < len(paths)
    for row, path in zip(rows, paths, strict=True):
        assert row["picture"].tobytes() == PIL.Image.open(path).tobytes()
        assert row["raw"] == {"path": path, "bytes": None}
