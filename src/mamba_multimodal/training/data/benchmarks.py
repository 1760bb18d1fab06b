"""The VLM benchmarks beside VQA v2 that LLaVA-1.5 and Cobra report, as `datasets.DatasetDict`s: GQA, TextVQA, POPE.

Official files (reference/vlm_coco_vqa.md E3), looked for in `<root>` and the sub-folders named below:
GQA (gqadataset.org, questions1.2.zip + images.zip; LLaVA's `playground/data/eval/gqa/data`):
    {testdev,val}_balanced_questions.json  {question_id: {"imageId", "question", "answer", "fullAnswer", "isBalanced",
        "types": {"structural", "semantic", "detailed"}, "groups", "semantic", "entailed", "equivalent", ...}}
    images: `<images_dir>/<imageId>.jpg`, images_dir defaulting to `<root>/images` (or `<root>/../images`).
TextVQA (textvqa.org, 0.5.1):
    TextVQA_0.5.1_{train,val,test}.json  {"dataset_name", "dataset_version", "data": [{"question_id", "question",
        "image_id", "answers": [10 strings] (not in test), "image_classes", "question_tokens", "set_name", ...}]}
    TextVQA_Rosetta_OCR_v0.2_{split}.json (optional)  {"data": [{"image_id", "ocr_tokens": [...], ...}]}
    images: `<images_dir>/<image_id>.jpg`; train and val images are both in `train_images/`, test in `test_images/`,
    under images_dir (default: the first of `<root>`, `<root>/..` holding the folder).
POPE (github AoiDragon/POPE `output/coco/`; LLaVA's `playground/data/eval/pope/coco`), in `<root>`, `<root>/coco` or
`<root>/output/coco`:
    coco_pope_{adversarial,popular,random}.json  JSON lines {"question_id", "image": "COCO_val2014_<12 digits>.jpg",
        "text": "Is there a <object> in the image?", "label": "yes" | "no"}
    images: COCO val2014, `<images_dir>/<image>`, images_dir defaulting to the first of `<root>/val2014`,
    `<root>/../val2014` holding it.

Rows (images as paths in a lazy `datasets.Image()` column, checked at load time as `images.py` says):
    GQA      split "testdev" / "validation": question_id (str), image_id (str), image, question, answer, full_answer,
             structural_type, semantic_type, detailed_type (the "types" fields; the official eval.py reports
             accuracy per structural and per semantic type)
    TextVQA  split "train" / "validation" / "test": question_id (int), image_id (str), image, question,
             answers (10 strings; [] for test), ocr_tokens (Rosetta's; [] without the OCR file), image_classes
    POPE     split "test" (lmms-lab/POPE's name), the three files one after the other: question_id (int; numbered per
             file), image_id (int, the COCO id), image, image_file, question, answer ("yes"/"no"), category
             ("adversarial", "popular", "random": the file it came from)
Scoring: `metrics.gqa_accuracy(predictions, split["answer"])`, `metrics.vqa_accuracy(predictions, split["answers"],
normalization="textvqa")`, `metrics.pope_metrics(predictions, split["answer"])` per category.
A Hub dataset id (lmms-lab/textvqa, lmms-lab/POPE: their columns already carry these names) goes to
`datasets.load_dataset`; GQA's Hub copy keeps images in a separate config, so GQA reads the official files only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import datasets

from .coco import load_hub_dataset
from .images import check_on_missing_image, keep_rows, unusable_images

_INT, _STRING = datasets.Value("int64"), datasets.Value("string")
GQA_SPLITS = {"testdev_balanced": "testdev", "val_balanced": "validation"}
GQA_FEATURES = datasets.Features({
    "question_id": _STRING, "image_id": _STRING, "image": datasets.Image(), "question": _STRING, "answer": _STRING,
    "full_answer": _STRING, "structural_type": _STRING, "semantic_type": _STRING, "detailed_type": _STRING,
})  # fmt: skip
TEXTVQA_SPLITS = {"train": "train", "val": "validation", "test": "test"}
_TEXTVQA_IMAGE_FOLDERS = {"train": "train_images", "val": "train_images", "test": "test_images"}
TEXTVQA_FEATURES = datasets.Features({
    "question_id": _INT, "image_id": _STRING, "image": datasets.Image(), "question": _STRING,
    "answers": datasets.List(_STRING), "ocr_tokens": datasets.List(_STRING), "image_classes": datasets.List(_STRING),
})  # fmt: skip
POPE_CATEGORIES = ("adversarial", "popular", "random")
POPE_FEATURES = datasets.Features({
    "question_id": _INT, "image_id": _INT, "image": datasets.Image(), "image_file": _STRING, "question": _STRING,
    "answer": _STRING, "category": _STRING,
})  # fmt: skip
_COCO_ID = re.compile(r"(\d+)\.jpg$")


def _first(folders, name: str) -> Path | None:
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def _first_dir(candidates: list[Path]) -> Path:
    return next((candidate for candidate in candidates if candidate.is_dir()), candidates[0])


def _load_json(path: Path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _dataset(rows: list[dict], features: datasets.Features) -> datasets.Dataset:
    return datasets.Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)


def _check_splits(splits, known) -> None:
    unknown = set(splits or ()) - set(known)
    if unknown:
        raise ValueError(f"splits must be among {', '.join(known)}, got {sorted(unknown)}")


def _without_unusable_images(rows: list[dict], on_missing_image: str, verify: bool, source: str) -> list[dict]:
    """`rows` less those whose image (row["image"], keyed by row["image_id"]) is missing or, verified, unreadable."""
    bad = unusable_images({row["image_id"]: row["image"] for row in rows}, on_missing_image, verify, source=source)
    return [rows[index] for index in keep_rows([row["image_id"] for row in rows], bad)]


# ------------------------------------------------------------------------------------------------------- GQA
def _gqa_split(questions_file: Path, images: Path, on_missing_image: str, verify: bool) -> datasets.Dataset:
    rows = [
        {"question_id": str(question_id), "image_id": item["imageId"], "image": str(images / f"{item['imageId']}.jpg"),
         "question": item["question"], "answer": item["answer"], "full_answer": item.get("fullAnswer", ""),
         "structural_type": item["types"]["structural"], "semantic_type": item["types"]["semantic"],
         "detailed_type": item["types"]["detailed"]}
        for question_id, item in _load_json(questions_file).items()
        if item.get("isBalanced", True)  # eval.py scores the balanced questions only
    ]  # fmt: skip
    return _dataset(_without_unusable_images(rows, on_missing_image, verify, questions_file.name), GQA_FEATURES)


def load_gqa(
    source: str | os.PathLike,
    *,
    splits: tuple[str, ...] | None = None,
    images_dir: str | os.PathLike | None = None,
    on_missing_image: str = "raise",
    verify_images: bool = False,
) -> datasets.DatasetDict:
    """GQA's balanced questions with their answer, question types and image (schema in the module docstring).

    Args:
        source: the folder holding `testdev_balanced_questions.json` (and/or `val_balanced_questions.json`), or
            its `questions/` sub-folder's parent.
        splits: among "testdev_balanced", "val_balanced"; default every one found.
        images_dir: the folder of `<imageId>.jpg` (default: see the module docstring).
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
    Returns:
        DatasetDict with "testdev" and / or "validation".
    Raises:
        FileNotFoundError naming the expected file when none (or an asked one) is there; ValueError naming the image
        id and path of a missing image (on_missing_image="raise").
    """
    check_on_missing_image(on_missing_image)
    _check_splits(splits, GQA_SPLITS)
    root = Path(source)
    folders = (root, root / "questions")
    found = {name: _first(folders, f"{name}_questions.json") for name in GQA_SPLITS}
    wanted = list(splits or [name for name in GQA_SPLITS if found[name]])
    missing = [name for name in wanted or ["testdev_balanced"] if found[name] is None]
    if missing:
        raise FileNotFoundError(f"no {missing[0]}_questions.json in {root} (or {root / 'questions'})")
    images = Path(images_dir) if images_dir is not None else _first_dir([root / "images", root.parent / "images"])
    return datasets.DatasetDict({
        GQA_SPLITS[name]: _gqa_split(found[name], images, on_missing_image, verify_images) for name in wanted
    })  # fmt: skip


# --------------------------------------------------------------------------------------------------- TextVQA
def _ocr_tokens(ocr_file: Path | None) -> dict[str, list[str]]:
    if ocr_file is None:
        return {}
    return {item["image_id"]: [str(token) for token in item["ocr_tokens"]] for item in _load_json(ocr_file)["data"]}


def _textvqa_split(questions_file: Path, ocr_file, images: Path, on_missing_image: str, verify: bool):
    ocr = _ocr_tokens(ocr_file)
    rows = [
        {"question_id": item["question_id"], "image_id": item["image_id"],
         "image": str(images / f"{item['image_id']}.jpg"), "question": item["question"],
         "answers": item.get("answers", []), "ocr_tokens": ocr.get(item["image_id"], []),
         "image_classes": item.get("image_classes", [])}
        for item in _load_json(questions_file)["data"]
    ]  # fmt: skip
    return _dataset(_without_unusable_images(rows, on_missing_image, verify, questions_file.name), TEXTVQA_FEATURES)


def load_textvqa(
    source: str | os.PathLike,
    *,
    splits: tuple[str, ...] | None = None,
    images_dir: str | os.PathLike | None = None,
    on_missing_image: str = "raise",
    verify_images: bool = False,
    **load_dataset_kwargs,
) -> datasets.DatasetDict:
    """TextVQA 0.5.1 questions with their 10 answers, Rosetta OCR tokens where the OCR file is there, and images.

    Args:
        source: the folder holding `TextVQA_0.5.1_{split}.json` (the official files, see the module docstring), or
            else a dataset id / folder for `datasets.load_dataset` (lmms-lab/textvqa layout).
        splits: among "train", "val", "test"; default every one found.
        images_dir: the folder holding train_images/ and test_images/ (default: see the module docstring).
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
        load_dataset_kwargs: passed to `datasets.load_dataset` for a Hub dataset.
    Returns:
        DatasetDict with "train", "validation", "test" (those found or asked for).
    """
    check_on_missing_image(on_missing_image)
    _check_splits(splits, TEXTVQA_SPLITS)
    root = Path(source)
    found = {name: _first([root], f"TextVQA_0.5.1_{name}.json") for name in TEXTVQA_SPLITS} if root.is_dir() else {}
    if not any(found.values()):
        return load_hub_dataset(str(source), **load_dataset_kwargs)
    dataset_dict = {}
    for name in splits or [name for name in TEXTVQA_SPLITS if found[name]]:
        if found[name] is None:
            raise FileNotFoundError(f"no TextVQA_0.5.1_{name}.json in {root}")
        folder = _TEXTVQA_IMAGE_FOLDERS[name]
        base = Path(images_dir) if images_dir is not None else None
        images = base / folder if base is not None else _first_dir([root / folder, root.parent / folder])
        ocr_file = _first([root], f"TextVQA_Rosetta_OCR_v0.2_{name}.json")
        dataset_dict[TEXTVQA_SPLITS[name]] = _textvqa_split(found[name], ocr_file, images, on_missing_image,
                                                            verify_images)  # fmt: skip
    return datasets.DatasetDict(dataset_dict)


# ------------------------------------------------------------------------------------------------------ POPE
def _pope_rows(path: Path, category: str, images: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            match = _COCO_ID.search(item["image"])
            if match is None:
                raise ValueError(f"{path.name} line {number}: image {item['image']!r} is not a COCO file name")
            rows.append({
                "question_id": item["question_id"], "image_id": int(match.group(1)),
                "image": str(images / item["image"]), "image_file": item["image"], "question": item["text"],
                "answer": item["label"], "category": category,
            })  # fmt: skip
    return rows


def load_pope(
    source: str | os.PathLike,
    *,
    categories: tuple[str, ...] | None = None,
    images_dir: str | os.PathLike | None = None,
    on_missing_image: str = "raise",
    verify_images: bool = False,
    **load_dataset_kwargs,
) -> datasets.DatasetDict:
    """POPE's yes/no object questions over COCO val2014, the three files in one "test" split with a `category`.

    Args:
        source: the folder holding `coco_pope_{adversarial,popular,random}.json` (or its `coco/` or `output/coco/`),
            or else a dataset id / folder for `datasets.load_dataset` (lmms-lab/POPE layout).
        categories: among "adversarial", "popular", "random"; default every one found.
        images_dir: the COCO val2014 image folder (default: see the module docstring).
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
        load_dataset_kwargs: passed to `datasets.load_dataset` for a Hub dataset.
    Returns:
        DatasetDict with "test".
    """
    check_on_missing_image(on_missing_image)
    unknown = set(categories or ()) - set(POPE_CATEGORIES)
    if unknown:
        raise ValueError(f"categories must be among {', '.join(POPE_CATEGORIES)}, got {sorted(unknown)}")
    root = Path(source)
    folders = (root, root / "coco", root / "output" / "coco")
    found = {name: _first(folders, f"coco_pope_{name}.json") for name in POPE_CATEGORIES} if root.is_dir() else {}
    if not any(found.values()):
        return load_hub_dataset(str(source), **load_dataset_kwargs)
    wanted = categories or [name for name in POPE_CATEGORIES if found[name]]
    rows = []
    for name in wanted:
        if found[name] is None:
            raise FileNotFoundError(f"no coco_pope_{name}.json in {root} (or coco/, output/coco/)")
        home = found[name].parent
        candidates = [home / "val2014", home.parent / "val2014", root / "val2014", root.parent / "val2014"]
        images = Path(images_dir) if images_dir is not None else _first_dir(candidates)
        rows += _pope_rows(found[name], name, images)
    rows = _without_unusable_images(rows, on_missing_image, verify_images, "POPE")
    return datasets.DatasetDict({"test": _dataset(rows, POPE_FEATURES)})


__all__ = ["GQA_FEATURES", "POPE_CATEGORIES", "POPE_FEATURES", "TEXTVQA_FEATURES", "load_gqa", "load_pope",
           "load_textvqa"]  # fmt: skip
