"""COCO captions as `datasets.DatasetDict`s: the official annotation files, Karpathy's splits, or a Hub dataset.

Official layout (cocodataset.org, "Data format", captions): `<root>/annotations/captions_{train,val}{2014,2017}.json`,
each {"info", "licenses", "images": [{"id", "width", "height", "file_name", ...}], "annotations": [{"id",
"image_id", "caption"}]}, with the images in `<root>/{train,val}{year}/<file_name>` (2014:
COCO_val2014_000000000042.jpg, 2017: 000000000042.jpg). Splits are named "train" and "validation".

Karpathy's `dataset_coco.json`: {"images": [{"filepath": "train2014" | "val2014", "filename", "imgid", "split":
"train" | "restval" | "val" | "test", "sentids", "sentences": [{"tokens", "raw", "imgid", "sentid"}], "cocoid"}],
"dataset": "coco"}, images in `<images_root>/<filepath>/<filename>`. Splits: "train" (train + restval, 113,287
images), "validation" (5,000), "test" (5,000).

One row per caption (default):
| column         | feature          | official JSON               | Karpathy            |
|----------------|------------------|-----------------------------|---------------------|
| `image_id`     | int64            | annotations[].image_id      | cocoid              |
| `caption_id`   | int64            | annotations[].id            | sentences[].sentid  |
| `caption`      | string           | annotations[].caption       | sentences[].raw     |
| `image`        | Image() (lazy)   | <images_dir>/file_name      | <root>/filepath/filename |
| `file_name`    | string           | images[].file_name          | filename            |
| `width`, `height` | int32         | images[].width / height     | -                   |
| `tokens`       | List(string)     | -                           | sentences[].tokens  |
| `karpathy_split` | string         | -                           | split (train, restval, val, test) |
With `group_by_image=True`, one row per image (in file order, images without captions left out): `caption`,
`caption_id` and `tokens` become `captions` List(string), `caption_ids` List(int64) and `tokens` List(List(string)).

Every image is checked before the dataset is returned: see `images.py` (`on_missing_image`, `verify_images`).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import datasets

from .images import check_on_missing_image, keep_rows, unusable_images

COCO_SPLITS = {"train": "train", "val": "validation"}  # file split -> DatasetDict split
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
CAPTION_COLUMNS = ("caption", "captions", "text", "sentences", "answer")  # Hub columns tried, in order
_CAPTIONS_FILE = re.compile(r"captions_(train|val)(\d{4})\.json")
_INT, _STRING, _SIZE = datasets.Value("int64"), datasets.Value("string"), datasets.Value("int32")


# ------------------------------------------------------------------------------------------------ features
def caption_features(group_by_image: bool, karpathy: bool = False) -> datasets.Features:
    """The schema of the module docstring."""
    if group_by_image:
        features = {"image_id": _INT, "caption_ids": datasets.List(_INT), "captions": datasets.List(_STRING)}
    else:
        features = {"image_id": _INT, "caption_id": _INT, "caption": _STRING}
    features.update({"image": datasets.Image(), "file_name": _STRING})
    if karpathy:
        tokens = datasets.List(_STRING)
        features.update({"tokens": datasets.List(tokens) if group_by_image else tokens, "karpathy_split": _STRING})
    else:
        features.update({"width": _SIZE, "height": _SIZE})
    return datasets.Features(features)


def _to_dataset(rows: list[dict], features: datasets.Features, group_by_image: bool) -> datasets.Dataset:
    """Rows of one caption each (image_id, caption_id, caption, ...) -> a Dataset, grouped per image if asked."""
    if group_by_image:
        grouped: dict[int, dict] = {}
        for row in rows:
            image = grouped.setdefault(row["image_id"], {**row, "caption_ids": [], "captions": [], "tokens": []})
            image["caption_ids"].append(row["caption_id"])
            image["captions"].append(row["caption"])
            image["tokens"].append(row.get("tokens"))
        rows = list(grouped.values())
    columns = {name: [row[name] for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


# ------------------------------------------------------------------------------------------- official files
def _official_split(
    annotation_file: Path, images_dir: Path, group_by_image: bool, on_missing_image: str, verify_images: bool
) -> datasets.Dataset:
    with open(annotation_file, encoding="utf-8") as file:
        data = json.load(file)
    images = {image["id"]: image for image in data["images"]}
    paths = {image_id: str(images_dir / image["file_name"]) for image_id, image in images.items()}
    rows = []
    for annotation in data["annotations"]:
        image = images[annotation["image_id"]]
        rows.append({
            "image_id": image["id"], "caption_id": annotation["id"], "caption": annotation["caption"],
            "image": paths[image["id"]], "file_name": image["file_name"], "width": image["width"],
            "height": image["height"],
        })  # fmt: skip
    bad = unusable_images(paths, on_missing_image, verify_images, source=annotation_file.name)
    rows = [rows[index] for index in keep_rows([row["image_id"] for row in rows], bad)]
    return _to_dataset(rows, caption_features(group_by_image), group_by_image)


def _official_files(source: Path, year: int | None) -> dict[str, Path]:
    """{DatasetDict split: annotation file} for a COCO root, its annotations/ folder, or one captions file."""
    if source.is_file():
        candidates = [source]
    else:
        folder = source / "annotations" if (source / "annotations").is_dir() else source
        candidates = sorted(folder.glob("captions_*.json"))
    files = {}
    for candidate in candidates:
        match = _CAPTIONS_FILE.fullmatch(candidate.name)
        if match and (year is None or int(match.group(2)) == int(year)):
            split = COCO_SPLITS[match.group(1)]
            if split in files:
                raise ValueError(f"several COCO years in {source} ({files[split].name}, {candidate.name}): pass year=")
            files[split] = candidate
    return files


def _default_images_dir(annotation_file: Path) -> Path:
    """COCO's layout: <root>/annotations/captions_val2017.json -> <root>/val2017."""
    folder = "".join(_CAPTIONS_FILE.fullmatch(annotation_file.name).groups())
    root = annotation_file.parent.parent if annotation_file.parent.name == "annotations" else annotation_file.parent
    return root / folder


# --------------------------------------------------------------------------------------------------- Hub
def load_hub_dataset(source: str, **load_dataset_kwargs) -> datasets.DatasetDict:
    """`datasets.load_dataset(source)` as a DatasetDict, with a message that says what was tried when it fails."""
    try:
        loaded = datasets.load_dataset(source, **load_dataset_kwargs)
    except Exception as error:
        raise OSError(
            f"{source!r} holds no official annotation files here, and datasets.load_dataset({source!r}) failed "
            f"({type(error).__name__}: {error}). Pass a local folder in the official layout, or check the dataset id "
            "and the network (HF_DATASETS_OFFLINE=1 forbids downloads)."
        ) from error
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({load_dataset_kwargs.get("split") or "train": loaded})
    return loaded


def _hub_captions(source: str, caption_column: str | None, image_column: str, **kwargs) -> datasets.DatasetDict:
    """A Hub dataset with an image and a caption column, renamed to `image` and `caption` / `captions`."""
    dataset_dict = load_hub_dataset(source, **kwargs)
    columns = next(iter(dataset_dict.values())).column_names
    caption_column = caption_column or next((name for name in CAPTION_COLUMNS if name in columns), None)
    if caption_column not in columns or image_column not in columns:
        raise ValueError(
            f"{source!r} has columns {columns}; pass caption_column= (tried {', '.join(CAPTION_COLUMNS)}) and "
            f"image_column= (got {image_column!r}) naming its caption and image columns"
        )
    feature = next(iter(dataset_dict.values())).features[caption_column]
    if feature == _STRING:
        target = "caption"
    elif isinstance(feature, datasets.List) and feature.feature == _STRING:
        target = "captions"
    else:
        raise ValueError(f"caption column {caption_column!r} of {source!r} must hold strings or lists of strings")
    renames = {old: new for old, new in ((caption_column, target), (image_column, "image")) if old != new}
    return dataset_dict.rename_columns(renames) if renames else dataset_dict


# --------------------------------------------------------------------------------------------- public API
def load_coco_captions(
    source: str | os.PathLike,
    *,
    year: int | None = None,
    splits: tuple[str, ...] | None = None,
    images_dir: str | os.PathLike | None = None,
    group_by_image: bool = False,
    on_missing_image: str = "raise",
    verify_images: bool = False,
    caption_column: str | None = None,
    image_column: str = "image",
    **load_dataset_kwargs,
) -> datasets.DatasetDict:
    """COCO captions from the official annotation files, or from a Hub dataset with image and caption columns.

    Args:
        source: a COCO root (holding `annotations/captions_*{year}.json`), an annotations folder, one captions file,
            or else a dataset id / folder for `datasets.load_dataset`.
        year: 2014 or 2017, needed only when the folder holds both.
        splits: the official files' splits to read, "train" and / or "validation"; default every one found.
        images_dir: the image folder of a single captions file; default `<root>/{train,val}{year}` for each split.
        group_by_image: one row per image with all its captions, instead of one row per caption.
        on_missing_image: "raise" or "skip" (module docstring of `images.py`); verify_images: decode each image once.
        caption_column, image_column: the Hub dataset's columns, renamed to `caption` (strings) or `captions` (lists)
            and `image`; the caption column defaults to the first of caption, captions, text, sentences, answer.
        load_dataset_kwargs: passed to `datasets.load_dataset` (split, revision, ...).
    Returns:
        DatasetDict "train" / "validation" with the schema of the module docstring (a Hub dataset keeps its own
        splits and other columns).
    Raises:
        ValueError naming the image id and path for a missing image (on_missing_image="raise"); FileNotFoundError
        for an asked split without its captions file; OSError when the source is neither official files nor loadable
        by `datasets.load_dataset`.
    """
    check_on_missing_image(on_missing_image)
    if splits is not None and (isinstance(splits, str) or not set(splits) <= set(COCO_SPLITS.values())):
        raise ValueError(f"splits must be a tuple of {', '.join(COCO_SPLITS.values())}, got {splits!r}")
    path = Path(source)
    files = _official_files(path, year) if path.exists() else {}
    if not files:
        return _hub_captions(str(source), caption_column, image_column, **load_dataset_kwargs)
    missing = sorted(set(splits or ()) - set(files))
    if missing:
        raise FileNotFoundError(f"no captions file of the {', '.join(missing)} split in {source}")
    files = {split: file for split, file in files.items() if splits is None or split in splits}
    if images_dir is not None and len(files) > 1:
        raise ValueError(f"images_dir= is for a single captions file, but {source} has {sorted(files)}")
    splits = {}
    for split, annotation_file in files.items():
        folder = Path(images_dir) if images_dir is not None else _default_images_dir(annotation_file)
        splits[split] = _official_split(annotation_file, folder, group_by_image, on_missing_image, verify_images)
    return datasets.DatasetDict(splits)


def load_coco_karpathy(
    karpathy_json: str | os.PathLike,
    images_root: str | os.PathLike,
    *,
    group_by_image: bool = False,
    on_missing_image: str = "raise",
    verify_images: bool = False,
) -> datasets.DatasetDict:
    """COCO captions in Karpathy's splits from `dataset_coco.json` (train = train + restval, validation, test).

    Args:
        karpathy_json: the path of `dataset_coco.json`.
        images_root: the folder holding `train2014/` and `val2014/` (the entries' `filepath`).
        group_by_image, on_missing_image, verify_images: as `load_coco_captions`.
    Returns:
        DatasetDict "train" / "validation" / "test" with the Karpathy schema of the module docstring.
    """
    check_on_missing_image(on_missing_image)
    with open(karpathy_json, encoding="utf-8") as file:
        images = json.load(file)["images"]
    rows, paths = defaultdict(list), defaultdict(dict)
    for image in images:
        split = KARPATHY_SPLITS[image["split"]]
        path = str(Path(images_root) / image["filepath"] / image["filename"])
        paths[split][image["cocoid"]] = path
        for sentence in image["sentences"]:
            rows[split].append({
                "image_id": image["cocoid"], "caption_id": sentence["sentid"], "caption": sentence["raw"],
                "tokens": sentence["tokens"], "image": path, "file_name": image["filename"],
                "karpathy_split": image["split"],
            })  # fmt: skip
    features = caption_features(group_by_image, karpathy=True)
    splits = {}
    for split in ("train", "validation", "test"):
        source = f"{Path(karpathy_json).name} ({split})"
        bad = unusable_images(paths[split], on_missing_image, verify_images, source=source)
        kept = [rows[split][index] for index in keep_rows([row["image_id"] for row in rows[split]], bad)]
        splits[split] = _to_dataset(kept, features, group_by_image)
    return datasets.DatasetDict(splits)


__all__ = ["caption_features", "load_coco_captions", "load_coco_karpathy", "load_hub_dataset"]
