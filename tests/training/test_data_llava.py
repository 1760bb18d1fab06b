"""`load_llava` on LLaVA's alignment (558k) and instruction (mix665k) files in their released layouts: the turns as
given, text-only rows, numeric ids, the image folders, missing images, JSON lines, and the lazy Arrow-backed rows."""

import json
import logging

import datasets
import pytest
from fixtures_llava import ALIGNMENT_ROWS, INSTRUCTION_ROWS, write_alignment, write_image, write_instructions

from mamba_multimodal.training.data import load_llava


def expected_rows(rows):
    """The rows as the loader should give them, image aside: ids as strings, the turns' from/value only."""
    turns = lambda row: [{"from": t["from"], "value": t["value"]} for t in row["conversations"]]  # noqa: E731
    return [{"id": str(row["id"]), "conversations": turns(row)} for row in rows]


def test_alignment_rows_are_read_as_given_with_their_images(tmp_path):
    json_path = write_alignment(tmp_path / "LLaVA-Pretrain")
    dataset = load_llava(json_path, tmp_path / "LLaVA-Pretrain" / "images", cache_dir=tmp_path / "cache")
    assert isinstance(dataset, datasets.Dataset) and dataset.column_names == ["id", "image", "conversations"]
    assert dataset.remove_columns("image").to_list() == expected_rows(ALIGNMENT_ROWS)
    image = dataset[0]["image"]
    red, _, blue = image.getpixel((4, 4))
    assert image.size == (8, 8) and red < 10 and abs(blue - 128) < 10  # write_image's colour for the first row


def test_instruction_mix_keeps_multi_turn_text_only_rows_and_numeric_ids(tmp_path):
    json_path = write_instructions(tmp_path / "data")
    dataset = load_llava(json_path, cache_dir=tmp_path / "cache")  # image root: the JSON's folder
    assert dataset.remove_columns("image").to_list() == expected_rows(INSTRUCTION_ROWS)
    assert dataset.features["image"] == datasets.Image() and "model" not in dataset.column_names
    by_id = {row["id"]: row for row in dataset}
    assert by_id["i6IyJda_0"]["image"] is None  # ShareGPT, text-only
    assert len(by_id["000000033471"]["conversations"]) == 4 and "2356347" in by_id  # an int id becomes a string
    paths = dataset.cast_column("image", datasets.Image(decode=False))["image"]
    folders = {path["path"].removeprefix(str(tmp_path / "data") + "/").rsplit("/", 1)[0] for path in paths if path}
    assert folders == {"coco/train2017", "gqa/images", "ocr_vqa/images", "textvqa/train_images", "vg/VG_100K",
                       "vg/VG_100K_2"}  # fmt: skip


def test_rows_live_in_an_arrow_file_reused_until_the_json_changes(tmp_path):
    json_path = write_instructions(tmp_path / "data")
    first = load_llava(json_path, cache_dir=tmp_path / "cache")
    assert first.cache_files and first.cache_files[0]["filename"].startswith(str(tmp_path / "cache"))
    assert load_llava(json_path, cache_dir=tmp_path / "cache").cache_files == first.cache_files
    rows = json.loads(json_path.read_text())[:2]
    json_path.write_text(json.dumps(rows))
    assert len(load_llava(json_path, cache_dir=tmp_path / "cache")) == 2


def test_json_lines_give_the_same_rows(tmp_path):
    json_path = write_instructions(tmp_path / "data")
    lines = tmp_path / "data" / "mix.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in INSTRUCTION_ROWS))
    listed = load_llava(json_path, cache_dir=tmp_path / "cache")
    assert load_llava(lines, cache_dir=tmp_path / "cache").to_list() == listed.to_list()


def test_a_missing_image_raises_naming_it_or_its_rows_are_skipped(tmp_path, caplog):
    json_path = write_instructions(tmp_path / "data")
    (tmp_path / "data" / "gqa" / "images" / "2354786.jpg").unlink()
    with pytest.raises(ValueError, match=r"gqa/images/2354786.jpg of llava_v1_5_mix665k.json: .* is missing"):
        load_llava(json_path, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        dataset = load_llava(json_path, on_missing_image="skip", cache_dir=tmp_path / "cache")
    assert "skipped 1 of 6 images" in caplog.text
    assert dataset["id"] == [str(row["id"]) for row in INSTRUCTION_ROWS if row["id"] != "n161313"]


def test_a_corrupt_image_is_found_with_verify_images(tmp_path):
    json_path = write_alignment(tmp_path)
    (tmp_path / "images" / "00223" / "002239345.jpg").write_bytes(b"not a jpeg")
    assert len(load_llava(json_path, tmp_path / "images", cache_dir=tmp_path / "cache")) == 2
    with pytest.raises(ValueError, match=r"00223/002239345\.jpg .* unreadable"):
        load_llava(json_path, tmp_path / "images", verify_images=True, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "image": ["x.jpg", "y.jpg"], "conversations": []}, "one image per row, got 2"),
        ({"id": "b", "conversations": [{"from": "human"}]}, "conversations must be a list"),
        ({"id": "c"}, "conversations must be a list"),
    ],
)
def test_rows_outside_the_format_raise_naming_the_row(tmp_path, row, message):
    json_path = tmp_path / "bad.json"
    json_path.write_text(json.dumps([row]))
    write_image(tmp_path / "x.jpg", 0)
    with pytest.raises(ValueError, match=f"row {row['id']!r} of .*bad.json: {message}"):
        load_llava(json_path, cache_dir=tmp_path / "cache")
