"""Small GQA, TextVQA and POPE files in the exact official layouts (reference/vlm_coco_vqa.md E3).

Only the counts are small: file names, folder layout, field names and nesting are those of the released files, and the
images are real (8x8 JPEGs) under the official file names.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from fixtures_vlm import write_image

# --------------------------------------------------------------------------------------------------------- GQA
# (question id, image id, question, answer, structural type, semantic type, detailed type), as in the released file.
GQA_QUESTIONS = [
    ("20968379", "n288870", "What color is the shirt?", "white", "query", "attr", "color"),
    ("20968380", "n288870", "Is the shirt white?", "yes", "verify", "attr", "verifyAttr"),
    ("201307251", "n161313", "Is it an indoors or outdoors scene?", "outdoors", "choose", "global", "locationChoose"),
    ("201640614", "n161313", "Are there both cars and fences?", "no", "logic", "obj", "twoDifferentC"),
    ("202225914", "n235859", "Which vehicle is left of the man?", "truck", "query", "rel", "categoryRel"),
]
GQA_UNBALANCED = ("20968381", "n288870", "Is the white shirt short sleeved?", "no", "verify", "attr", "verifyAttr")


def string_colour(text: str) -> int:
    return zlib.crc32(text.encode()) % 1000


def write_gqa(root: Path, tier: str = "testdev_balanced", write_images: bool = True) -> dict:
    """<root>/{tier}_questions.json (one more question with isBalanced false) and <root>/images/<imageId>.jpg, the
    layout of LLaVA's playground/data/eval/gqa/data."""
    questions = {}
    for qid, image, question, answer, structural, semantic, detailed in [*GQA_QUESTIONS, GQA_UNBALANCED]:
        questions[qid] = {
            "semantic": [{"operation": "select", "dependencies": [], "argument": "shirt (2372327)"},
                         {"operation": "query", "dependencies": [0], "argument": "color"}],
            "entailed": [], "equivalent": [qid], "question": question, "imageId": image,
            "isBalanced": qid != GQA_UNBALANCED[0], "groups": {"global": detailed, "local": f"10q-{detailed}"},
            "answer": answer, "semanticStr": "select: shirt (2372327)->query: color [0]",
            "annotations": {"answer": {}, "question": {"4": "2372327"}, "fullAnswer": {"1": "2372327"}},
            "types": {"detailed": detailed, "semantic": semantic, "structural": structural},
            "fullAnswer": f"The answer is {answer}.",
        }  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{tier}_questions.json").write_text(json.dumps(questions))
    if write_images:
        for image in {row[1] for row in GQA_QUESTIONS}:
            write_image(root / "images" / f"{image}.jpg", string_colour(image))
    return questions


# ----------------------------------------------------------------------------------------------------- TextVQA
TEXTVQA_IMAGES = ("0054c91397f2fe05", "00685bc495504d61")
TEXTVQA_OCR = {"0054c91397f2fe05": ["NOKIA", "connecting", "people"], "00685bc495504d61": []}
TEXTVQA_QUESTIONS = [  # (question id, image id, question, 10 raw human answers)
    (34602, "0054c91397f2fe05", "what is the brand of phone?", ["nokia"] * 7 + ["Nokia", "NOKIA", "nokia phone"]),
    (34603, "0054c91397f2fe05", "what does the white text say?", ["connecting people"] * 5 + ["unanswerable"] * 5),
    (34604, "00685bc495504d61", "what number is on the bus?", ["twelve"] * 2 + ["12"] * 8),
]


def write_textvqa(root: Path, split: str = "val", with_ocr: bool = True, write_images: bool = True) -> dict:
    """<root>/TextVQA_0.5.1_{split}.json (+ TextVQA_Rosetta_OCR_v0.2_{split}.json) and <root>/train_images/<id>.jpg
    (val images live in train_images/, as in train_val_images.zip)."""
    data = [
        {"question": question, "image_id": image, "image_classes": ["Mobile phone", "Text"],
         "flickr_original_url": f"https://farm2.staticflickr.com/{image}_o.jpg",
         "flickr_300k_url": f"https://c4.staticflickr.com/{image}_z.jpg", "image_width": 1024, "image_height": 768,
         "answers": answers, "question_tokens": question.rstrip("?").split(), "question_id": qid, "set_name": split}
        for qid, image, question, answers in TEXTVQA_QUESTIONS
    ]  # fmt: skip
    payload = {"dataset_type": split, "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": data}
    root.mkdir(parents=True, exist_ok=True)
    (root / f"TextVQA_0.5.1_{split}.json").write_text(json.dumps(payload))
    if with_ocr:
        ocr = [
            {"image_id": image, "ocr_tokens": tokens,
             "ocr_info": [{"word": token, "bounding_box": {"top_left_x": 0.1, "top_left_y": 0.2, "width": 0.3,
                                                           "height": 0.1, "rotation": 0, "roll": 0, "pitch": 0,
                                                           "yaw": 0}} for token in tokens]}
            for image, tokens in TEXTVQA_OCR.items()
        ]  # fmt: skip
        ocr_payload = {"dataset_type": split, "dataset_name": "textvqa", "dataset_version": "0.2", "data": ocr}
        (root / f"TextVQA_Rosetta_OCR_v0.2_{split}.json").write_text(json.dumps(ocr_payload))
    if write_images:
        folder = "test_images" if split == "test" else "train_images"
        for image in TEXTVQA_IMAGES:
            write_image(root / folder / f"{image}.jpg", string_colour(image))
    return payload


# -------------------------------------------------------------------------------------------------------- POPE
POPE_IMAGE_IDS = (310196, 210789)
POPE_QUESTIONS = {  # category: [(image id, object, label)], two questions per image as in the released files
    "adversarial": [(310196, "snowboard", "yes"), (310196, "dining table", "no"), (210789, "car", "yes"),
                    (210789, "person", "no")],
    "popular": [(310196, "snowboard", "yes"), (310196, "person", "no"), (210789, "car", "yes"),
                (210789, "chair", "no")],
    "random": [(310196, "snowboard", "yes"), (310196, "giraffe", "no"), (210789, "car", "yes"),
               (210789, "toothbrush", "no")],
}  # fmt: skip


def write_pope(root: Path, write_images: bool = True) -> dict:
    """<root>/coco/coco_pope_{category}.json (JSON lines) and <root>/val2014/COCO_val2014_<id>.jpg, the layout of
    LLaVA's playground/data/eval/pope."""
    (root / "coco").mkdir(parents=True, exist_ok=True)
    written = {}
    for category, questions in POPE_QUESTIONS.items():
        rows = [
            {"question_id": index + 1, "image": f"COCO_val2014_{image_id:012d}.jpg",
             "text": f"Is there a {name} in the image?", "label": label}
            for index, (image_id, name, label) in enumerate(questions)
        ]  # fmt: skip
        (root / "coco" / f"coco_pope_{category}.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
        written[category] = rows
    if write_images:
        for image_id in POPE_IMAGE_IDS:
            write_image(root / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", image_id)
    return written
