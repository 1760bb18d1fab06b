"""Small LLaVA files in the exact released layouts (haotian-liu/LLaVA docs/Data.md; reference/vlm_coco_vqa.md E2).

Only the counts are small: the file names, the row shape (id, image, conversations of from/value turns), the "<image>"
placement, the text-only ShareGPT rows, the numeric ids of some rows and the image folders are those of
`blip_laion_cc_sbu_558k.json` and `llava_v1_5_mix665k.json`; the images are real 8x8 JPEGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import PIL.Image

ALIGNMENT_ROWS = [
    {"id": "004539375", "image": "00453/004539375.jpg", "conversations": [
        {"from": "human", "value": "Render a clear and concise summary of the photo.\n<image>"},
        {"from": "gpt", "value": "select luxury furniture 3 - inch gel memory foam mattress topper"}]},
    {"id": "002239345", "image": "00223/002239345.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWrite a terse but informative summary of the picture."},
        {"from": "gpt", "value": "a grey watch with an army style strap"}]},
]  # fmt: skip

INSTRUCTION_ROWS = [
    {"id": "000000033471", "image": "coco/train2017/000000033471.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
        {"from": "gpt", "value": "The bus in the image is white and red."},
        {"from": "human", "value": "What feature can be seen on the back of the bus?"},
        {"from": "gpt", "value": "The back of the bus features an advertisement."}]},
    {"id": "n161313", "image": "gqa/images/2354786.jpg", "conversations": [
        {"from": "human", "value": "<image>\nIs the sky dark?\nAnswer the question using a single word or phrase."},
        {"from": "gpt", "value": "Yes"}]},
    {"id": "i6IyJda_0", "model": "", "conversations": [  # ShareGPT: text-only, no "image" key
        {"from": "human", "value": "How to tell if a customer segment is well segmented? In 3 bullet points."},
        {"from": "gpt", "value": "1. Homogeneity\n2. Distinctiveness\n3. Reachability"}]},
    {"id": "140031996", "image": "ocr_vqa/images/140031996.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWho wrote this book?"}, {"from": "gpt", "value": "Ann Dunnewold"},
        {"from": "human", "value": "Is this a comedy book?"}, {"from": "gpt", "value": "No"}]},
    {"id": "0a0bc91825468c45", "image": "textvqa/train_images/0a0bc91825468c45.jpg", "conversations": [
        {"from": "human", "value": "<image>\nwhat is written on the sign?\nReference OCR token: STOP"},
        {"from": "gpt", "value": "stop"}]},
    {"id": 2356347, "image": "vg/VG_100K/2356347.jpg", "conversations": [  # a number: some released ids are
        {"from": "human", "value": "<image>\nPlease provide the bounding box coordinate of the region: a red car."},
        {"from": "gpt", "value": "[0.12, 0.34, 0.56, 0.78]"}]},
    {"id": "2413", "image": "vg/VG_100K_2/2413.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is on the table?"}, {"from": "gpt", "value": "A vase."}]},
]  # fmt: skip


def write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", (8, 8), (seed * 37 % 256, seed * 91 % 256, 128)).save(path, format="JPEG")


def write_llava(json_path: Path, rows: list[dict], image_root: Path, write_images: bool = True) -> list[dict]:
    """`json_path` holding `rows` as a JSON list, and their images under `image_root`; returns the rows."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=2))
    if write_images:
        for seed, row in enumerate(rows):
            if "image" in row:
                write_image(image_root / row["image"], seed)
    return rows


def write_alignment(root: Path) -> Path:
    """<root>/blip_laion_cc_sbu_558k.json and its images <root>/images/00453/004539375.jpg, ... (images.zip)."""
    write_llava(root / "blip_laion_cc_sbu_558k.json", ALIGNMENT_ROWS, root / "images")
    return root / "blip_laion_cc_sbu_558k.json"


def write_instructions(root: Path) -> Path:
    """<root>/llava_v1_5_mix665k.json and its images under <root>/coco/, gqa/, ocr_vqa/, textvqa/, vg/."""
    write_llava(root / "llava_v1_5_mix665k.json", INSTRUCTION_ROWS, root)
    return root / "llava_v1_5_mix665k.json"
