"""VQA v2 as a `datasets.DatasetDict`: the official questions + annotations JSON with the COCO images, or a Hub dataset.

Official files (visualqa.org, "VQA v2" download page, input and annotation formats), in `<root>`, `<root>/Questions`
or `<root>/Annotations`:
    v2_OpenEnded_mscoco_{subtype}_questions.json  {"info", "task_type", "data_type", "data_subtype",
        "questions": [{"image_id", "question", "question_id"}], "license"}
    v2_mscoco_{subtype}_annotations.json  (train2014, val2014 only)  {"info", "license", "data_type", "data_subtype",
        "annotations": [{"question_id", "image_id", "question_type", "answer_type", "answers": [{"answer",
        "answer_confidence", "answer_id"}] x 10, "multiple_choice_answer"}]}
Images: `<images_dir>/{folder}/COCO_{folder}_{image_id:012d}.jpg`, folder = the subtype (test-dev2015 uses
test2015); `images_dir` defaults to the first of `<root>/Images/mscoco`, `<root>/Images`, `<root>` holding it.

Splits: train2014 -> "train", val2014 -> "validation", test-dev2015 -> "testdev", test2015 -> "test" (the names of
lmms-lab/VQAv2). One row per question:
| column                   | feature        | source                                                         |
|--------------------------|----------------|----------------------------------------------------------------|
| `question_id`, `image_id`| int64          | questions[]                                                    |
| `image`                  | Image() (lazy) | the COCO image file                                            |
| `question`               | string         | questions[].question                                           |
| `answers`                | List(string)   | annotations[].answers[].answer by answer_id (10); [] for test / test-dev |
| `multiple_choice_answer` | string         | annotations[] ("" for test / test-dev)                         |
| `answer_type`            | string         | "yes/no", "number", "other" ("" for test / test-dev)           |
| `question_type`          | string         | e.g. "what color is the" ("" for test / test-dev)              |
`mamba_multimodal.training.metrics.vqa_accuracy(predictions, dataset["answers"])` is the official accuracy.
A Hub dataset (lmms-lab/VQAv2 layout: answers as [{"answer", "answer_confidence", "answer_id"}]) gets its `answers`
turned into the list of answer strings; its other columns stay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets

from .coco import load_hub_dataset
from .images import check_on_missing_image, keep_rows, unusable_images

VQA_SUBTYPES = {"train2014": "train", "val2014": "validation", "test-dev2015": "testdev", "test2015": "test"}
_IMAGE_FOLDERS = {"test-dev2015": "test2015"}  # test-dev questions are about test2015 images
_INT, _STRING = datasets.Value("int64"), datasets.Value("string")
VQA_FEATURES = datasets.Features({
    "question_id": _INT, "image_id": _INT, "image": datasets.Image(), "question": _STRING,
    "answers": datasets.List(_STRING), "multiple_choice_answer": _STRING, "answer_type": _STRING,
    "question_type": _STRING,
})  # fmt: skip


def _find(root: Path, filename: str) -> Path | None:
    for folder in (root, root / "Questions", root / "Annotations"):
        if (folder / filename).is_file():
            return folder / filename
    return None


def _images_folder(root: Path, images_dir, subtype: str) -> Path:
    folder = _IMAGE_FOLDERS.get(subtype, subtype)
    if images_dir is not None:
        return Path(images_dir) / folder
    candidates = [base / folder for base in (root / "Images" / "mscoco", root / "Images", root)]
    return next((candidate for candidate in candidates if candidate.is_dir()), candidates[0])


def _load_json(path: Path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _annotation_columns(annotation: dict | None) -> dict:
    if annotation is None:
        return {"answers": [], "multiple_choice_answer": "", "answer_type": "", "question_type": ""}
    answers = sorted(annotation["answers"], key=lambda answer: answer.get("answer_id", 0))
    return {
        "answers": [answer["answer"] for answer in answers],
        "multiple_choice_answer": annotation["multiple_choice_answer"],
        "answer_type": annotation["answer_type"],
        "question_type": annotation["question_type"],
    }


def _official_split(
    questions_file: Path, annotations_file: Path | None, image_folder: Path, on_missing_image: str, verify: bool
) -> datasets.Dataset:
    questions = _load_json(questions_file)["questions"]
    annotations = {}
    if annotations_file is not None:
        annotations = {item["question_id"]: item for item in _load_json(annotations_file)["annotations"]}
    folder = image_folder.name
    paths = {q["image_id"]: str(image_folder / f"COCO_{folder}_{q['image_id']:012d}.jpg") for q in questions}
    bad = unusable_images(paths, on_missing_image, verify, source=questions_file.name)
    rows = []
    for index in keep_rows([question["image_id"] for question in questions], bad):
        question = questions[index]
        if annotations_file is not None and question["question_id"] not in annotations:
            raise ValueError(f"question_id {question['question_id']} of {questions_file.name} has no annotation")
        rows.append({
            "question_id": question["question_id"], "image_id": question["image_id"],
            "image": paths[question["image_id"]], "question": question["question"],
            **_annotation_columns(annotations.get(question["question_id"])),
        })  # fmt: skip
    columns = {name: [row[name] for row in rows] for name in VQA_FEATURES}
    return datasets.Dataset.from_dict(columns, features=VQA_FEATURES)


def _hub_vqa(source: str, **kwargs) -> datasets.DatasetDict:
    dataset_dict = load_hub_dataset(source, **kwargs)

    def answer_strings(batch):
        return {
            "answers": [[a["answer"] if isinstance(a, dict) else a for a in answers] for answers in batch["answers"]]
        }

    converted = {}
    for split, dataset in dataset_dict.items():
        if "answers" in dataset.column_names and dataset.features["answers"] != datasets.List(_STRING):
            features = dataset.features.copy()
            features["answers"] = datasets.List(_STRING)
            dataset = dataset.map(answer_strings, batched=True, features=features)
        converted[split] = dataset
    return datasets.DatasetDict(converted)


def load_vqa_v2(
    source: str | os.PathLike,
    *,
    splits: tuple[str, ...] | None = None,
    images_dir: str | os.PathLike | None = None,
    on_missing_image: str = "raise",
    verify_images: bool = False,
    **load_dataset_kwargs,
) -> datasets.DatasetDict:
    """VQA v2 questions with their 10 answers and COCO images (schema in the module docstring).

    Args:
        source: the folder holding the official JSON files (see the module docstring), or else a dataset id / folder
            for `datasets.load_dataset` (lmms-lab/VQAv2 layout).
        splits: subtypes to load among train2014, val2014, test-dev2015, test2015; default every one found.
        images_dir: the folder holding train2014/, val2014/, test2015/ (default: see the module docstring).
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
        load_dataset_kwargs: passed to `datasets.load_dataset` for a Hub dataset.
    Returns:
        DatasetDict with "train", "validation", "testdev", "test" (those found or asked for).
    Raises:
        FileNotFoundError for an asked split without its questions file; ValueError naming the image id and path for
        a missing image (on_missing_image="raise") or naming a question without annotation.
    """
    check_on_missing_image(on_missing_image)
    root = Path(source)
    unknown = set(splits or ()) - set(VQA_SUBTYPES)
    if unknown:
        raise ValueError(f"splits must be among {', '.join(VQA_SUBTYPES)}, got {sorted(unknown)}")
    found = {s: _find(root, f"v2_OpenEnded_mscoco_{s}_questions.json") for s in VQA_SUBTYPES} if root.is_dir() else {}
    if not any(found.values()):
        return _hub_vqa(str(source), **load_dataset_kwargs)
    dataset_dict = {}
    for subtype in splits or [s for s in VQA_SUBTYPES if found[s]]:
        if found[subtype] is None:
            raise FileNotFoundError(f"no v2_OpenEnded_mscoco_{subtype}_questions.json in {root} (or Questions/)")
        annotations_file = _find(root, f"v2_mscoco_{subtype}_annotations.json")
        image_folder = _images_folder(root, images_dir, subtype)
        dataset_dict[VQA_SUBTYPES[subtype]] = _official_split(
            found[subtype], annotations_file, image_folder, on_missing_image, verify_images
        )
    return datasets.DatasetDict(dataset_dict)


__all__ = ["VQA_FEATURES", "load_vqa_v2"]
