"""LLaVA's instruction and alignment data (haotian-liu/LLaVA, docs/Data.md) as a `datasets.Dataset`.

Files: a JSON list (or JSON lines) of rows {"id", "image", "conversations": [{"from": "human" | "gpt", "value"}]}:
- alignment, `blip_laion_cc_sbu_558k.json` (liuhaotian/LLaVA-Pretrain): one round, "<image>" before or after the
  instruction, the caption as the gpt turn; images at `<image_root>/00453/004539375.jpg` (the `images.zip` layout);
- instructions, `llava_v1_5_mix665k.json`: multi-turn rounds, "<image>\\n" opening the first human turn; the ShareGPT
  rows have no "image" (text-only); images under `<image_root>/coco/train2017/`, `gqa/images/`, `ocr_vqa/images/`,
  `textvqa/train_images/`, `vg/VG_100K/` and `vg/VG_100K_2/`. "id" is a string in most rows and a number in some.

| column          | feature                              | source                                                 |
|-----------------|--------------------------------------|--------------------------------------------------------|
| `id`            | string                               | id (numbers written as strings; the row index if none) |
| `image`         | Image() (lazy; None for text-only)   | <image_root>/<image>                                   |
| `conversations` | List({"from": string, "value": string}) | the turns as given                                  |
Other keys of a row (ShareGPT's "model", ...) are left out. `VLMambaDataCollator` turns the rows into training
batches (the chat template, labels on the gpt turns).

Lazy: the rows are written once to an Arrow file in the `datasets` cache (memory-mapped, reused while the JSON file is
unchanged) and images stay paths, decoded on access; every image is checked to exist when the dataset is loaded
(`images.py`: `on_missing_image`, `verify_images`), as the COCO and VQA loaders do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError

from .images import check_on_missing_image, keep_rows, unusable_images

_STRING = datasets.Value("string")
LLAVA_FEATURES = datasets.Features({
    "id": _STRING, "image": datasets.Image(), "conversations": datasets.List({"from": _STRING, "value": _STRING}),
})  # fmt: skip


def _read_rows(path: Path):
    """The rows of a JSON list, or of a JSON-lines file (one row per line)."""
    with open(path, encoding="utf-8") as file:
        first = file.read(64).lstrip()[:1]
        file.seek(0)
        if first == "[":
            yield from json.load(file)
        else:
            yield from (json.loads(line) for line in file if line.strip())


def _llava_rows(json_path: str, image_root: str, modified: int, size: int):
    """The generator behind the Arrow file; `modified` and `size` only key the cache to the file's version."""
    for index, row in enumerate(_read_rows(Path(json_path))):
        image = row.get("image")
        if isinstance(image, list):
            raise ValueError(f"row {row.get('id', index)!r} of {json_path}: one image per row, got {len(image)}")
        turns = row.get("conversations")
        if not isinstance(turns, list) or not all(isinstance(t, dict) and {"from", "value"} <= set(t) for t in turns):
            raise ValueError(
                f"row {row.get('id', index)!r} of {json_path}: conversations must be a list of "
                '{"from": "human" | "gpt", "value": str}'
            )
        yield {
            "id": str(row.get("id", index)),
            "image": None if image is None else os.path.join(image_root, image),
            "conversations": [{"from": turn["from"], "value": turn["value"]} for turn in turns],
        }


def load_llava(
    json_path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    *,
    on_missing_image: str = "raise",
    verify_images: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """LLaVA-format rows (schema in the module docstring), in file order.

    Args:
        json_path: `blip_laion_cc_sbu_558k.json`, `llava_v1_5_mix665k.json` or any file in their format (a JSON list
            or JSON lines).
        image_root: the folder the rows' "image" paths are relative to (default: the JSON file's folder).
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
        cache_dir: where `datasets` keeps the Arrow file (default: its cache, `HF_DATASETS_CACHE`).
    Raises:
        FileNotFoundError for a missing file; ValueError for a file that is not JSON, naming the row with a list of
        images or malformed conversations, and, with on_missing_image="raise", naming the first missing image.
    """
    check_on_missing_image(on_missing_image)
    path = Path(json_path).expanduser().resolve()
    root = Path(image_root).expanduser().resolve() if image_root is not None else path.parent
    stat = path.stat()
    source = {"json_path": str(path), "image_root": str(root), "modified": stat.st_mtime_ns, "size": stat.st_size}
    try:
        dataset = datasets.Dataset.from_generator(
            _llava_rows, features=LLAVA_FEATURES, gen_kwargs=source, cache_dir=str(cache_dir) if cache_dir else None
        )
    except DatasetGenerationError as error:  # the row's own ValueError (or the JSON's), not datasets' wrapper
        raise (error.__cause__ if isinstance(error.__cause__, ValueError) else error) from None
    # The paths, read from the Arrow column without decoding an image, each named by its path under the image root.
    paths = [None if item is None else item["path"] for item in dataset.data.column("image").to_pylist()]
    names = [None if image is None else os.path.relpath(image, root) for image in paths]
    named = {name: image for name, image in zip(names, paths, strict=True) if image is not None}
    bad = unusable_images(named, on_missing_image, verify_images, source=path.name)
    return dataset.select(keep_rows(names, bad)) if bad else dataset


__all__ = ["LLAVA_FEATURES", "load_llava"]
