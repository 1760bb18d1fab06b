"""Image files behind the COCO / VQA / easy-VQA loaders: checked when the dataset is built, never silently dropped.

The loaders keep images as paths in a `datasets.Image()` column, so they decode lazily, on access. Before that, every
distinct image is checked to exist (one `stat` each); with `verify_images=True` each is also decoded once (PIL
`open` + `load`), which finds truncated or corrupt files at load time at the cost of reading every image.
A failing image is handled by `on_missing_image`: "raise" (ValueError naming the image id, the path and the reason)
or "skip" (its rows are dropped and one warning gives the count and the first ids).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

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


__all__ = ["ON_MISSING_IMAGE", "check_on_missing_image", "keep_rows", "unusable_images"]
