"""Small COCO captions, Karpathy and VQA v2 files in the exact official layouts (reference/vlm_coco_vqa.md B1, B2).

Only the counts are small: file names, folder layout, field names and nesting are those of the released files, and the
images are real (8x8 JPEGs, one colour per image id) under COCO's file names.
"""

from __future__ import annotations

import json
from pathlib import Path

import PIL.Image

CAPTIONS_PER_IMAGE = 5
VQA_IMAGE_IDS = {"train2014": (9, 25), "val2014": (42, 73), "test2015": (1, 2)}
QUESTIONS_PER_IMAGE = 3


def write_image(path: Path, image_id: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", (8, 8), (image_id * 37 % 256, image_id * 91 % 256, 128)).save(path, format="JPEG")


def coco_file_name(image_id: int, folder: str) -> str:
    """2014: COCO_val2014_000000000042.jpg; 2017: 000000000042.jpg."""
    return f"COCO_{folder}_{image_id:012d}.jpg" if folder.endswith("2014") else f"{image_id:012d}.jpg"


def caption_text(image_id: int, index: int) -> str:
    return f"A photo number {index} of image {image_id}."


# --------------------------------------------------------------------------------------------- COCO captions
def write_coco_captions(root: Path, split: str, year: int, image_ids, write_images: bool = True) -> dict:
    """<root>/annotations/captions_{split}{year}.json and <root>/{split}{year}/<file_name>; returns the JSON."""
    folder = f"{split}{year}"
    images = [
        {"license": 3, "file_name": coco_file_name(image_id, folder), "coco_url": f"http://images.cocodataset.org/"
         f"{folder}/{coco_file_name(image_id, folder)}", "height": 8 + image_id % 3, "width": 8,
         "date_captured": "2013-11-14 11:18:45", "flickr_url": "http://farm9.staticflickr.com/x.jpg", "id": image_id}
        for image_id in image_ids
    ]  # fmt: skip
    annotations = [
        {"image_id": image_id, "id": 1000 * image_id + index, "caption": caption_text(image_id, index)}
        for index in range(CAPTIONS_PER_IMAGE)
        for image_id in image_ids  # interleaved, as in the released files
    ]
    data = {
        "info": {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0", "year": year,
                 "contributor": "COCO Consortium", "date_created": "2017/09/01"},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3, "name": "Attribution"}],
        "images": images,
        "annotations": annotations,
    }  # fmt: skip
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"captions_{folder}.json").write_text(json.dumps(data))
    if write_images:
        for image in images:
            write_image(root / folder / image["file_name"], image["id"])
    return data


# -------------------------------------------------------------------------------------------------- Karpathy
KARPATHY_SPLITS = {  # cocoid: (filepath, split)
    9: ("train2014", "train"), 25: ("train2014", "train"), 42: ("val2014", "restval"), 73: ("val2014", "val"),
    74: ("val2014", "val"), 133: ("val2014", "test"),
}  # fmt: skip


def write_karpathy(path: Path, images_root: Path, write_images: bool = True) -> dict:
    """Karpathy's dataset_coco.json for KARPATHY_SPLITS, and the COCO-2014 images under images_root/<filepath>."""
    images = []
    for imgid, (cocoid, (filepath, split)) in enumerate(KARPATHY_SPLITS.items()):
        sentids = [10 * imgid + index for index in range(CAPTIONS_PER_IMAGE)]
        sentences = [
            {"tokens": caption_text(cocoid, index).lower().rstrip(".").split(), "raw": caption_text(cocoid, index),
             "imgid": imgid, "sentid": sentid}
            for index, sentid in enumerate(sentids)
        ]  # fmt: skip
        filename = coco_file_name(cocoid, filepath)
        images.append({"filepath": filepath, "sentids": sentids, "filename": filename, "imgid": imgid, "split": split,
                       "sentences": sentences, "cocoid": cocoid})  # fmt: skip
        if write_images:
            write_image(images_root / filepath / filename, cocoid)
    data = {"images": images, "dataset": "coco"}
    path.write_text(json.dumps(data))
    return data


# ----------------------------------------------------------------------------------------------------- VQA v2
def vqa_answers(question_id: int) -> list[str]:
    """10 human answers: question_id % 11 of them say "yes", the others "no"."""
    agreeing = question_id % 11
    return ["yes"] * agreeing + ["no"] * (10 - agreeing)


def write_vqa(root: Path, subtype: str, with_annotations: bool = True, write_images: bool = True) -> dict:
    """<root>/v2_OpenEnded_mscoco_{subtype}_questions.json (+ v2_mscoco_{subtype}_annotations.json) and the images
    under <root>/Images/mscoco/<folder>/COCO_<folder>_<id>.jpg (test-dev2015 uses test2015)."""
    folder = "test2015" if subtype == "test-dev2015" else subtype
    image_ids = VQA_IMAGE_IDS[folder]
    questions = [
        {"image_id": image_id, "question": f"Is there a thing number {index} in image {image_id}?",
         "question_id": image_id * 1000 + index}
        for image_id in image_ids
        for index in range(QUESTIONS_PER_IMAGE)
    ]  # fmt: skip
    header = {"info": {"description": "This is v2.0 of the VQA dataset.", "url": "http://visualqa.org",
                       "version": "2.0", "year": 2017, "contributor": "VQA Team", "date_created": "2017-04-26"},
              "license": {"url": "http://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"},
              "data_type": "mscoco", "data_subtype": subtype}  # fmt: skip
    (root / f"v2_OpenEnded_mscoco_{subtype}_questions.json").write_text(
        json.dumps({**header, "task_type": "Open-Ended", "questions": questions})
    )
    annotations = []
    for question in questions:
        answers = vqa_answers(question["question_id"])
        annotations.append({
            "question_type": "is there a", "multiple_choice_answer": max(set(answers), key=answers.count),
            "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": index + 1}
                        for index, answer in reversed(list(enumerate(answers)))],  # stored out of answer_id order
            "image_id": question["image_id"], "answer_type": "yes/no", "question_id": question["question_id"],
        })  # fmt: skip
    if with_annotations:
        (root / f"v2_mscoco_{subtype}_annotations.json").write_text(json.dumps({**header, "annotations": annotations}))
    if write_images:
        for image_id in image_ids:
            write_image(root / "Images" / "mscoco" / folder / f"COCO_{folder}_{image_id:012d}.jpg", image_id)
    return {"questions": questions, "annotations": annotations}
