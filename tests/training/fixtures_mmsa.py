"""Small feature pickles in the exact MMSA and MulT layouts (reference/coupled_mamba_mosei.md B1 and B2).

Only the number of clips is small: field names, dtypes, feature sizes and stored lengths are those of the real files.
Unaligned audio / vision hold random frames up to their true length and zeros after it, as MMSA's files do.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

SPLIT_SIZES = {"train": 4, "valid": 2, "test": 3}
# Feature sizes (text, audio, vision): MMSA config_regression.json.
MMSA_DIMS = {"mosi": (768, 5, 20), "mosei": (768, 74, 35), "sims": (768, 33, 709), "simsv2": (768, 33, 709)}
# Stored lengths (text, audio, vision) of the real files; the SIMS files exist only unaligned.
MMSA_LENGTHS = {
    ("mosei", True): (50, 50, 50),
    ("mosei", False): (50, 500, 500),
    ("mosi", True): (50, 50, 50),
    ("mosi", False): (50, 375, 500),
    ("sims", False): (39, 400, 55),
    ("simsv2", False): (39, 400, 55),
}
MMSA_FILES = {
    ("mosei", True): "aligned_50.pkl",
    ("mosei", False): "unaligned_50.pkl",
    ("mosi", True): "aligned_50.pkl",
    ("mosi", False): "unaligned_50.pkl",
    ("sims", False): "unaligned_39.pkl",
    ("simsv2", False): "sims_unaligned.pkl",
}
MULT_DIMS, MULT_LENGTHS = (300, 74, 35), {True: (50, 50, 50), False: (50, 500, 500)}


def _padded_frames(rng, count: int, stored: int, dim: int, lengths: np.ndarray) -> np.ndarray:
    """(count, stored, dim) float32: random frames before each true length, zeros after it."""
    frames = rng.standard_normal((count, stored, dim)).astype(np.float32)
    frames[np.arange(stored)[None, :] >= lengths[:, None]] = 0.0
    return frames


def _text_bert(rng, count: int, length: int) -> np.ndarray:
    """(count, 3, length) int64: [input_ids, input_mask, segment_ids], the tokens first, then padding."""
    tokens = rng.integers(3, length + 1, count)
    mask = (np.arange(length)[None, :] < tokens[:, None]).astype(np.int64)
    input_ids = rng.integers(1000, 30000, (count, length)) * mask
    return np.stack([input_ids, mask, np.zeros_like(mask)], axis=1)


def _sentiment(rng, dataset: str, count: int) -> np.ndarray:
    """MOSI/MOSEI: means of 3 ratings in [-3, 3] (multiples of 1/3); SIMS: multiples of 0.2 in [-1, 1]. Has a 0."""
    sims = dataset.startswith("sims")
    labels = rng.integers(-5, 6, count) * 0.2 if sims else rng.integers(-9, 10, count) / 3.0
    labels[0] = 0.0
    return labels.astype(np.float32)


def make_mmsa_split(rng, dataset: str, aligned: bool, count: int, split: str) -> dict:
    """One split of an MMSA pickle (fields as in MMSA's README and data_loader.py)."""
    text_dim, audio_dim, vision_dim = MMSA_DIMS[dataset]
    text_len, audio_len, vision_len = MMSA_LENGTHS[(dataset, aligned)]
    labels = _sentiment(rng, dataset, count)
    classes = np.sign(labels) + 1  # Negative 0, Neutral 1, Positive 2, stored as floats
    audio_lengths = np.full(count, audio_len) if aligned else rng.integers(1, audio_len + 1, count)
    vision_lengths = np.full(count, vision_len) if aligned else rng.integers(1, vision_len + 1, count)
    if not aligned:
        audio_lengths[-1] = audio_len  # one clip fills the whole stored length
    data = {
        "raw_text": np.array([f"{split} clip {i}, said with feeling" for i in range(count)], dtype=object),
        "audio": _padded_frames(rng, count, audio_len, audio_dim, audio_lengths),
        "vision": _padded_frames(rng, count, vision_len, vision_dim, vision_lengths),
        "id": np.array([f"video{split}{i // 2}$_${i % 2}" for i in range(count)], dtype=object),
        "text": rng.standard_normal((count, text_len, text_dim)).astype(np.float32),
        "text_bert": _text_bert(rng, count, text_len),
        "annotations": np.array([("Negative", "Neutral", "Positive")[int(c)] for c in classes], dtype=object),
        "classification_labels": classes.astype(np.float32),
        "regression_labels": labels,
    }
    if dataset.startswith("sims"):
        for part in "TAV":
            data[f"regression_labels_{part}"] = _sentiment(rng, dataset, count)
    if not aligned:
        data["audio_lengths"] = audio_lengths.tolist()  # MMSA stores Python lists
        data["vision_lengths"] = vision_lengths.tolist()
    return data


def write_mmsa_pickle(path, dataset="mosei", aligned=True, sizes=None, seed=0, protocol=pickle.DEFAULT_PROTOCOL):
    """Writes {"train", "valid", "test"} MMSA splits to `path` and returns the dict written."""
    rng = np.random.default_rng(seed)
    sizes = sizes or SPLIT_SIZES
    data = {split: make_mmsa_split(rng, dataset, aligned, count, split) for split, count in sizes.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # the README's one-liner writes into MMSA's layout
    with open(path, "wb") as file:
        pickle.dump(data, file, protocol=protocol)
    return data


def make_mult_split(rng, aligned: bool, count: int) -> dict:
    """One split of a MulT pickle: GloVe text, COVAREP audio, Facet vision, labels (N, 1, 1), id rows (N, 3)."""
    dims, lengths = MULT_DIMS, MULT_LENGTHS[aligned]
    return {
        "text": rng.standard_normal((count, lengths[0], dims[0])),  # float64, cast by MulT's loader
        "audio": rng.standard_normal((count, lengths[1], dims[1])).astype(np.float32),
        "vision": rng.standard_normal((count, lengths[2], dims[2])).astype(np.float32),
        "labels": _sentiment(rng, "mosei", count).reshape(count, 1, 1),
        "id": np.array([[f"video{i}".encode(), b"%d.0" % i, b"%d.5" % (i + 3)] for i in range(count)]),
    }


def write_mult_pickle(path, aligned=True, sizes=None, seed=0):
    """Writes {"train", "valid", "test"} MulT splits to `path` and returns the dict written."""
    rng = np.random.default_rng(seed)
    data = {split: make_mult_split(rng, aligned, count) for split, count in (sizes or SPLIT_SIZES).items()}
    with open(path, "wb") as file:
        pickle.dump(data, file)
    return data
