"""Image files behind the COCO / VQA / easy-VQA loaders: checked when the dataset is built, never silently dropped.

The loaders keep images as paths in a `datasets.Image()` column, so they decode lazily, on access. Before that, every
distinct image is checked to exist (one `stat` each); with `verify_images=True` each is also decoded once (PIL
`open` + `load`), which finds truncated or corrupt files at load time at the cost of reading every image.
A failing image is handled by `on_missing_image`: "raise" (ValueError naming the image id, the path and the reason)
or "skip" (its rows are dropped and one warning gives the count and the first ids).

For training over several epochs, `decoded_once` gives a split whose images decode once per file (`DecodedImages`, a
bounded cache of decoded images by path, over one image column or several); `flow.trainer_for` hands Trainer the
training split through it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

import datasets
import PIL.Image
from transformers.utils import logging

logger = logging.get_logger(__name__)

ON_MISSING_IMAGE = ("raise", "skip")


def check_on_missing_image(value: str) -> str:
    if value not in ON_MISSING_IMAGE:
        raise ValueError(f"on_missing_image must be one of {', '.join(ON_MISSING_IMAGE)}, got {value!r}")
    return value


def _problem(path: str, verify: bool) -> str | None:
    """None when the image at `path` is usable, else why not."""
    if not os.path.isfile(path):
        return "missing"
    if verify:
        try:
            with PIL.Image.open(path) as image:
                image.load()
        except Exception as error:  # PIL raises UnidentifiedImageError, OSError (truncated), SyntaxError, ...
            return f"unreadable ({type(error).__name__}: {error})"
    return None


def unusable_images(
    image_paths: dict[int, str], on_missing_image: str = "raise", verify_images: bool = False, source: str = ""
) -> set[int]:
    """The ids of the images in {image id: path} that are missing (or, with `verify_images`, do not decode).

    With on_missing_image="raise" the first such image raises ValueError naming its id and path; with "skip" the ids
    are returned (for the caller to drop their rows) after one warning with the count and the first ids.
    """
    check_on_missing_image(on_missing_image)
    bad: dict[int, str] = {}
    for image_id, path in image_paths.items():
        problem = _problem(path, verify_images)
        if problem is None:
            continue
        if on_missing_image == "raise":
            raise ValueError(
                f"image id {image_id} of {source or 'the dataset'}: {path} is {problem}. Fix the file, or pass "
                "on_missing_image='skip' to drop its rows with a warning."
            )
        bad[image_id] = problem
    if bad:
        first = sorted(bad)[:5]
        logger.warning(
            f"{source or 'dataset'}: skipped {len(bad)} of {len(image_paths)} images that are missing or unreadable, "
            f"with their rows (first ids: {first}; {first[0]}: {bad[first[0]]})"
        )
    return set(bad)


def keep_rows(column: Sequence[int], bad_ids: set[int]) -> list[int]:
    """Indices of the rows whose image id is not in `bad_ids`."""
    return [index for index, image_id in enumerate(column) if image_id not in bad_ids]


class DecodedImages:
    """Decoded images kept by file, up to `max_bytes` of pixels (the least recently used go first): a training run
    that reads each image of a small dataset epoch after epoch (easy-VQA: ten or so questions per image) decodes it
    once instead of at every row. Images without a path (bytes in the dataset) are decoded each time. `columns`: the
    image column's name, or several names (one cache for all: a file in two columns decodes once)."""

    def __init__(self, columns: str | Sequence[str] = "image", max_bytes: int = 1 << 30):
        self.columns = (columns,) if isinstance(columns, str) else tuple(columns)
        self.max_bytes = max_bytes
        self.images: OrderedDict[str, PIL.Image.Image] = OrderedDict()
        self.bytes = 0
        self.decoder = datasets.Image()

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        """A `datasets.Dataset.with_transform` transform: the columns' {"path", "bytes"} entries → PIL images."""
        return {**batch, **{column: [self.image(value) for value in batch[column]] for column in self.columns}}

    def image(self, value: dict | None) -> PIL.Image.Image | None:
        if value is None:  # a row without an image (LLaVA's text-only turns)
            return None
        path = value.get("path")
        # Embedded bytes carry at most a bare file name, which may repeat across folders: not a key.
        if not path or value.get("bytes") is not None:
            return self.decoder.decode_example(value)
        if path in self.images:
            self.images.move_to_end(path)
            return self.images[path]
        image = self.decoder.decode_example(value)
        image.load()
        self.images[path] = image
        self.bytes += _pixel_bytes(image)
        while self.bytes > self.max_bytes and len(self.images) > 1:
            self.bytes -= _pixel_bytes(self.images.popitem(last=False)[1])
        return image


def _pixel_bytes(image: PIL.Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


def decoded_once(
    split: datasets.Dataset, columns: str | Sequence[str] = "image", max_bytes: int = 1 << 30
) -> datasets.Dataset:
    """`split` whose image `columns` (a name or several) decode each file once (`DecodedImages`), for training over
    several epochs. The rows read as before (PIL images), through `with_transform`."""
    decoder = DecodedImages(columns, max_bytes)
    for column in decoder.columns:
        split = split.cast_column(column, datasets.Image(decode=False))
    return split.with_transform(decoder)


__all__ = [
    "ON_MISSING_IMAGE",
    "DecodedImages",
    "check_on_missing_image",
    "decoded_once",
    "keep_rows",
    "unusable_images",
]
