"""CMU-MOSEI / CMU-MOSI / CH-SIMS feature pickles (MMSA and MulT layouts) as `datasets.DatasetDict`s.

Glossary: N clips in a split; L_t, L_a, L_v the stored lengths of the text, audio and vision sequences (all 50 in the
aligned files; MMSA's unaligned MOSEI file stores 50 / 500 / 500); D_t, D_a, D_v the feature sizes (MOSEI: BERT 768,
COVAREP 74, Facet 35 in MMSA; GloVe 300, 74, 35 in MulT). Layouts: MMSA's README (thuiar/MMSA, "Datasets") and
MulT's loader (yaohungt/Multimodal-Transformer, `src/dataset.py`).

MMSA (thuiar/MMSA) `aligned_50.pkl`, `unaligned_50.pkl` (MOSI, MOSEI), `unaligned_39.pkl` (SIMS),
`sims_unaligned.pkl` (SIMS v2): {"train" | "valid" | "test": {field: array}}, fields `raw_text`, `text` (BERT
features), `text_bert`, `audio`, `vision`, `id`, `annotations`, `classification_labels`, `regression_labels`
(+ `regression_labels_T/A/V` for SIMS), and `audio_lengths`, `vision_lengths` in the unaligned files.
MulT (yaohungt/Multimodal-Transformer) `mosei_senti_data.pkl`, `mosei_senti_data_noalign.pkl`, `mosi_data.pkl`, ...:
the same splits with `text` (GloVe), `audio`, `vision`, `labels` (N, 1, 1) and `id`.

Both loaders return splits "train", "validation" (the files' "valid") and "test", with these columns:

| column            | feature                                 | per row      | MMSA key                | MulT key |
|-------------------|-----------------------------------------|--------------|-------------------------|----------|
| `id`              | string                                  |              | id                      | id ¹     |
| `text`            | string, where present                   |              | raw_text                | -        |
| `text_features`   | List(List(float32, length=D_t))         | (L_t, D_t)   | text                    | text     |
| `audio_features`  | List(List(float32, length=D_a))         | (l_a, D_a) ² | audio                   | audio    |
| `vision_features` | List(List(float32, length=D_v))         | (l_v, D_v) ² | vision                  | vision   |
| `text_bert`       | List(List(int64, length=L_t), length=3) | (3, L_t)     | text_bert ³             | -        |
| `label`           | float32                                 |              | regression_labels       | labels   |
| `label_class`     | ClassLabel(negative, neutral, positive) |              | classification_labels   | -        |
| `label_T/A/V`     | float32, SIMS only                      |              | regression_labels_T/A/V | -        |
| `annotation`      | string, where present                   |              | annotations             | -        |

¹ a MulT id row of several parts (video id, segment bounds) is joined with "$_$", MMSA's separator.
² aligned: the stored length (= L_t). MMSA unaligned: the true length `audio_lengths[i]` / `vision_lengths[i]`
  (capped at the stored length), the zero padding dropped. MulT files carry no lengths: the stored length.
³ [input_ids, input_mask, segment_ids]; `input_mask` marks the real BERT tokens (the pickles hold no text length).

As in MMSA and MulT, -inf in the audio features becomes 0. `ds.with_format("numpy")` or `("torch")` gives the
feature columns as (l, D) float32 arrays. A missing `id` becomes "<split>-<index>".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pyarrow as pa
from datasets.table import InMemoryTable

from ...sharing.hub_id import as_hub_id
from .safe_pickle import safe_load_pickle

SPLIT_NAMES = {"train": "train", "valid": "validation", "test": "test"}  # file split -> DatasetDict split
MMSA_FILENAMES = {True: ("aligned_50.pkl",), False: ("unaligned_50.pkl", "unaligned_39.pkl", "sims_unaligned.pkl")}
MMSA_LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}
MODALITIES = ("text", "audio", "vision")
SENTIMENT_CLASSES = ("negative", "neutral", "positive")  # MMSA's classification_labels 0, 1, 2
_STRING, _FLOAT = datasets.Value("string"), datasets.Value("float32")


# ------------------------------------------------------------------------------------------ finding the file
def _download(repo_id: str, filename: str, revision: str | None, cache_dir) -> Path:
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id, filename, repo_type="dataset", revision=revision, cache_dir=cache_dir
        )
    except Exception as error:
        raise OSError(
            f"{repo_id!r} is not a local file or directory, and downloading {filename!r} from the Hub dataset "
            f"{repo_id!r} failed ({type(error).__name__}: {error}). Pass the path of a local pickle, or check the "
            "repository id, `filename=` and the network (HF_HUB_OFFLINE=1 forbids downloads)."
        ) from error
    return Path(path)


def _find_in_directory(directory: Path, filenames: tuple[str, ...]) -> Path:
    """The first of `filenames` in `directory` or in its `Processed/` folder (MMSA's layout)."""
    for filename in filenames:
        for candidate in (directory / filename, directory / "Processed" / filename):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"no {' or '.join(filenames)} in {directory} or {directory / 'Processed'}; pass filename= to name the pickle"
    )


def resolve_pickle(path_or_hub_id, filenames: tuple[str, ...], revision: str | None = None, cache_dir=None) -> Path:
    """A local pickle: `path_or_hub_id` itself when it is a file; the first of `filenames` in it when it is a
    directory; else `filenames[0]` downloaded from the Hub dataset repository `path_or_hub_id`."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _find_in_directory(path, filenames)
    name = os.fspath(path_or_hub_id)
    if as_hub_id(name) is None or name.endswith(".pkl"):  # "data/mosei.pkl": a missing file, not a repository
        raise FileNotFoundError(f"{name!r} is neither an existing file or directory nor a Hub dataset id (owner/name)")
    return _download(name, filenames[0], revision, cache_dir)


# ------------------------------------------------------------------------------------------ reading a split
def _field(split: dict, key: str, where: str):
    if key not in split:
        raise ValueError(f"{where} has no {key!r} field (it has: {', '.join(map(str, split))})")
    return split[key]


def _per_sample(values, key: str, where: str, count: int, dtype=None) -> np.ndarray:
    """`values` as an array whose first axis has the `count` samples."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim == 0 or len(array) != count:
        got = "a scalar" if array.ndim == 0 else f"{len(array)}"
        raise ValueError(f"{where}[{key!r}] has {got} samples, but the split's labels have {count}")
    return array


def _scalars(values, key: str, where: str, count: int, dtype) -> np.ndarray:
    """One number per sample: (N,), (N, 1) or (N, 1, 1) -> (N,)."""
    array = _per_sample(values, key, where, count, dtype)
    if array.size != count:
        raise ValueError(f"{where}[{key!r}] must hold one value per sample, got shape {array.shape}")
    return array.reshape(count)


def _sequences(split: dict, key: str, where: str, count: int) -> np.ndarray:
    """A (N, L, D) float32 feature array."""
    array = _per_sample(_field(split, key, where), key, where, count, np.float32)
    if array.ndim != 3:
        raise ValueError(f"{where}[{key!r}] must have shape (N, L, D), got {array.shape}")
    return array


def _lengths(values, key: str, where: str, count: int, stored: int) -> np.ndarray:
    """(N,) true lengths, capped at the stored length."""
    lengths = _scalars(values, key, where, count, np.float64)
    bad = lengths[(lengths < 0) | (lengths != np.round(lengths))]
    if bad.size:
        raise ValueError(f"{where}[{key!r}] must hold non-negative whole lengths, got {bad[:5].tolist()}")
    return np.minimum(lengths.astype(np.int64), stored)


def _to_string(value) -> str:
    """A str from str / bytes / numpy string / number; a sequence of parts is joined with "$_$"."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray | list | tuple):
        return "$_$".join(_to_string(part) for part in value)
    return str(value)


def _strings(values, key: str, where: str, count: int) -> list[str]:
    if isinstance(values, np.ndarray) and values.ndim == 0:
        values = values.item()
    if isinstance(values, str | bytes) or len(values) != count:
        got = 1 if isinstance(values, str | bytes) else len(values)
        raise ValueError(f"{where}[{key!r}] has {got} samples, but the split's labels have {count}")
    return [_to_string(value) for value in values]


# ------------------------------------------------------------------------------------------ Arrow columns
def _ragged_column(array: np.ndarray, lengths: np.ndarray | None) -> pa.Array:
    """(N, L, D) and lengths (N,) (None: all L) -> list<fixed_size_list<float, D>>, row i holding array[i, :l_i]."""
    count, stored, dim = array.shape
    lengths = np.full(count, stored, dtype=np.int64) if lengths is None else lengths
    kept = array[np.arange(stored)[None, :] < lengths[:, None]]  #                                      (Σ l_i, D)
    rows = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(kept).reshape(-1)), dim)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), rows)


def _fixed_column(array: np.ndarray) -> pa.Array:
    """(N, a, b) -> fixed_size_list<fixed_size_list<item, b>, a>."""
    _, outer, inner = array.shape
    rows = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(array).reshape(-1)), inner)
    return pa.FixedSizeListArray.from_arrays(rows, outer)


def _sequence_feature(dim: int) -> datasets.List:
    """(l, dim) float32 rows of any length l."""
    return datasets.List(datasets.List(datasets.Value("float32"), length=dim))


# ------------------------------------------------------------------------------------------ split converters
def _modality_columns(split: dict, where: str, count: int, aligned: bool, length_keys: dict[str, str]) -> dict:
    """{"<modality>_features": (column, feature)} for text, audio, vision; cut to the true lengths when unaligned."""
    arrays = {modality: _sequences(split, modality, where, count) for modality in MODALITIES}
    stored = {modality: array.shape[1] for modality, array in arrays.items()}
    if aligned and len(set(stored.values())) > 1:
        raise ValueError(
            f"{where}: aligned=True, but the stored lengths differ (text {stored['text']}, audio {stored['audio']}, "
            f"vision {stored['vision']}): this looks like an unaligned file, pass aligned=False"
        )
    arrays["audio"][np.isneginf(arrays["audio"])] = 0.0  # as MMSA and MulT
    table = {}
    for modality, array in arrays.items():
        key = None if aligned else length_keys.get(modality)
        lengths = _lengths(split[key], key, where, count, stored[modality]) if key in split else None
        table[f"{modality}_features"] = (_ragged_column(array, lengths), _sequence_feature(array.shape[2]))
    return table


def _count(labels, key: str, where: str) -> int:
    array = np.asarray(labels)
    if array.ndim == 0:
        raise ValueError(f"{where}[{key!r}] must hold one label per sample, got a scalar")
    return len(array)


def _ids(split: dict, split_name: str, where: str, count: int) -> list[str]:
    if "id" not in split:
        return [f"{split_name}-{index}" for index in range(count)]
    return _strings(split["id"], "id", where, count)


def _class_labels(values, where: str, count: int) -> np.ndarray:
    labels = _scalars(values, "classification_labels", where, count, np.float64)
    if not np.isin(labels, (0, 1, 2)).all():
        raise ValueError(f"{where}['classification_labels'] must be 0, 1 or 2, got {sorted(set(labels.tolist()))}")
    return labels.astype(np.int64)


def _text_bert(values, where: str, count: int) -> tuple[pa.Array, datasets.List]:
    text_bert = _per_sample(values, "text_bert", where, count, np.int64)
    if text_bert.ndim != 3 or text_bert.shape[1] != 3:
        raise ValueError(f"{where}['text_bert'] must have shape (N, 3, L_t), got {text_bert.shape}")
    feature = datasets.List(datasets.List(datasets.Value("int64"), length=text_bert.shape[2]), length=3)
    return _fixed_column(text_bert), feature


def _mmsa_labels(split: dict, where: str, count: int) -> dict:
    """label, label_class, label_T/A/V and annotation: (column, feature) for those present."""
    labels = _scalars(split["regression_labels"], "regression_labels", where, count, np.float32)
    table = {"label": (labels, _FLOAT)}
    if "classification_labels" in split:
        classes = datasets.ClassLabel(names=list(SENTIMENT_CLASSES))
        table["label_class"] = (_class_labels(split["classification_labels"], where, count), classes)
    for part in "TAV":
        if f"regression_labels_{part}" in split:
            values = _scalars(split[f"regression_labels_{part}"], f"regression_labels_{part}", where, count, np.float32)
            table[f"label_{part}"] = (values, _FLOAT)
    if "annotations" in split:
        table["annotation"] = (_strings(split["annotations"], "annotations", where, count), _STRING)
    return table


def _mmsa_split(split: dict, split_name: str, where: str, aligned: bool) -> dict:
    """{column: (values, feature)} of one MMSA split."""
    count = _count(_field(split, "regression_labels", where), "regression_labels", where)
    table = {"id": (_ids(split, split_name, where, count), _STRING)}
    if "raw_text" in split:
        table["text"] = (_strings(split["raw_text"], "raw_text", where, count), _STRING)
    table.update(_modality_columns(split, where, count, aligned, MMSA_LENGTH_KEYS))
    if "text_bert" in split:
        table["text_bert"] = _text_bert(split["text_bert"], where, count)
    table.update(_mmsa_labels(split, where, count))
    return table


def _mult_split(split: dict, split_name: str, where: str, aligned: bool) -> dict:
    """{column: (values, feature)} of one MulT split."""
    count = _count(_field(split, "labels", where), "labels", where)
    table = {"id": (_ids(split, split_name, where, count), _STRING)}
    table.update(_modality_columns(split, where, count, aligned, length_keys={}))
    table["label"] = (_scalars(split["labels"], "labels", where, count, np.float32), _FLOAT)
    return table


def _dataset(table: dict, split_name: str, fingerprint: str) -> datasets.Dataset:
    """{column: (values, feature)} -> an in-memory Dataset.

    Built from an Arrow table with a given fingerprint: `Dataset.from_dict` would hash every feature value to make
    one (seconds per thousand clips).
    """
    features = datasets.Features({name: feature for name, (_, feature) in table.items()})
    arrow = pa.Table.from_pydict({name: values for name, (values, _) in table.items()}, schema=features.arrow_schema)
    info = datasets.DatasetInfo(features=features)
    split = datasets.NamedSplit(split_name)
    return datasets.Dataset(InMemoryTable(arrow), info=info, split=split, fingerprint=fingerprint)


def _fingerprint(path: Path, *parts) -> str:
    """A cache key of the file (resolved path, size, modification time) and the loader's arguments."""
    stat = path.stat()
    key = repr((str(path.resolve()), stat.st_size, stat.st_mtime_ns, *parts))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _to_dataset_dict(path: Path, convert, aligned: bool) -> datasets.DatasetDict:
    """Reads `path` safely and converts each of its train / valid / test splits with `convert`."""
    data = safe_load_pickle(path)
    if not isinstance(data, dict) or not any(name in data for name in SPLIT_NAMES):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} must hold a dict with 'train', 'valid' and 'test' splits, found {found}")
    splits = {}
    for file_name, split_name in SPLIT_NAMES.items():
        if file_name not in data:
            continue
        where = f"{path.name}[{file_name!r}]"
        if not isinstance(data[file_name], dict):
            raise ValueError(f"{where} must be a dict of fields, got {type(data[file_name]).__name__}")
        table = convert(data[file_name], split_name, where, aligned)
        splits[split_name] = _dataset(table, split_name, _fingerprint(path, convert.__name__, split_name, aligned))
    return datasets.DatasetDict(splits)


# ------------------------------------------------------------------------------------------ public loaders
def load_mmsa(
    path_or_hub_id: str | os.PathLike,
    aligned: bool = True,
    *,
    filename: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.DatasetDict:
    """Loads an MMSA feature pickle (MOSI, MOSEI, SIMS, SIMS v2) as splits train / validation / test.

    Args:
        path_or_hub_id: the pickle itself; a directory holding it (or holding `Processed/` with it, MMSA's layout);
            or a Hub dataset repository id, from which `filename` is downloaded.
        aligned: True for `aligned_50.pkl` (all modalities on one time axis, L = 50), False for the unaligned files
            (`unaligned_50.pkl`, SIMS `unaligned_39.pkl`, SIMS v2 `sims_unaligned.pkl`): audio and vision are then cut
            to their true lengths. With aligned=True, modalities of different stored lengths raise ValueError.
        filename: the pickle's name inside a directory or Hub repository; default by `aligned` as above.
        revision, cache_dir: passed to `huggingface_hub.hf_hub_download` for a Hub id.
    Returns:
        A DatasetDict with the schema of the module docstring.
    Raises:
        FileNotFoundError / OSError when the pickle cannot be found or downloaded; pickle.UnpicklingError when it holds
        anything but data (nothing in it runs); ValueError naming the split and field when a field is missing or
        has the wrong shape.
    """
    filenames = (filename,) if filename else MMSA_FILENAMES[bool(aligned)]
    path = resolve_pickle(path_or_hub_id, filenames, revision, cache_dir)
    return _to_dataset_dict(path, _mmsa_split, bool(aligned))


def load_mult(
    path_or_hub_id: str | os.PathLike,
    aligned: bool = True,
    *,
    dataset: str = "mosei_senti",
    filename: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.DatasetDict:
    """Loads a MulT pickle (`mosei_senti_data.pkl`, `mosi_data_noalign.pkl`, ...) as splits train / validation / test.

    Args:
        path_or_hub_id: the pickle, a directory holding it, or a Hub dataset repository id.
        aligned: picks `{dataset}_data.pkl` (True) or `{dataset}_data_noalign.pkl` (False) in a directory or
            repository; with aligned=True, modalities of different stored lengths raise ValueError. MulT files
            carry no true lengths, so unaligned sequences keep their stored (zero-padded) length.
        dataset: the file prefix, "mosei_senti" or "mosi" (sentiment labels only: IEMOCAP's (N, 4, 2) emotion
            labels are refused).
        filename, revision, cache_dir: as in `load_mmsa`.
    Returns:
        A DatasetDict with the schema of the module docstring (columns id, text_features, audio_features,
        vision_features, label).
    """
    filenames = (filename or f"{dataset}_data{'' if aligned else '_noalign'}.pkl",)
    path = resolve_pickle(path_or_hub_id, filenames, revision, cache_dir)
    return _to_dataset_dict(path, _mult_split, bool(aligned))


__all__ = ["MMSA_FILENAMES", "SPLIT_NAMES", "load_mmsa", "load_mult", "resolve_pickle"]
