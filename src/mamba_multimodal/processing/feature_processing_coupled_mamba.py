"""Feature processor of Coupled Mamba: per-modality feature sequences → one common time axis, padded, with masks.

Glossary: b clips in a batch, n the real length of one modality of one clip, T the common length, D_m the feature
size of modality m. Coupled Mamba's state transition pairs step t of every modality (Eq. 6), so the model needs
all modalities of a clip on one time axis. Two ways to get there:

- aligned (`sequence_length=None`, the default): word-aligned data (MMSA `aligned_50.pkl`, MulT's aligned pickles),
  where the modalities of a clip already have one step per word. Passed through; clips are padded to the longest of
  the batch (or to `max_length`), and a modality whose length differs from the others' raises ValueError.
- resampled (`sequence_length=T`): unaligned data (MMSA `unaligned_50.pkl`: text 50, audio and vision 500 stored
  frames). Every modality of every clip is cut to its real length n and split into T contiguous segments, frames
  [⌊k·n/T⌋, ⌊(k+1)·n/T⌋), and each segment is averaged. Padding never enters a mean: the released code's `sampling()`
  spans the stored length and so averages the zero padding in. When n < T, a segment holding no frame takes the
  frame under its centre (nearest-neighbour upsampling). Every step of the result is real.

Input per modality m, as keywords `{m}_features=...` or in a dict of columns / a list of rows (a `datasets` batch,
or what Trainer hands a data collator): one clip (n, D_m); a list of clips of any lengths; or a padded (b, n, D_m)
array with the real lengths in `{m}_lengths`. numpy arrays, torch tensors and nested lists all work. `labels` (or a
`label` column) passes through, so the processor is a data collator too.
Output: `BatchFeature` with `{m}_features` (b, T, D_m), `{m}_attention_mask` (b, T) int64 (1 = real step) and
`labels` (b,) when given.
"""

from __future__ import annotations

import numpy as np
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from ..configuration.configuration_coupled_mamba import (
    DEFAULT_INPUT_SIZES,
    CoupledMambaConfig,
    split_modalities,
    validate_modalities,
)
from ..configuration.validation import is_finite_number, is_positive_int
from ..hub_mixin import HubProcessorMixin

PADDING_SIDES = ("right", "left")
DTYPES = ("float32", "float16", "bfloat16", "float64")


def resample_segments(frames: np.ndarray, length: int) -> np.ndarray:
    """(n, D) real frames → (length, D): the mean of each of `length` contiguous, nearly equal segments.

    Segment k holds frames ⌊k·n/length⌋ .. ⌊(k+1)·n/length⌋ - 1; an empty one (n < length) takes the frame at its
    centre. Means are accumulated in float64."""
    count = frames.shape[0]
    bounds = (np.arange(length + 1) * count) // length  #                                          (length + 1,)
    sums = np.concatenate([np.zeros((1, frames.shape[1])), np.cumsum(frames, axis=0, dtype=np.float64)])
    sizes = np.diff(bounds)
    means = (sums[bounds[1:]] - sums[bounds[:-1]]) / np.maximum(sizes, 1)[:, None]
    empty = sizes == 0
    if empty.any():
        centres = np.minimum(((2 * np.arange(length) + 1) * count) // (2 * length), count - 1)
        means[empty] = frames[centres[empty]]
    return means.astype(np.float32)


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=np.float32)


def _rows_to_columns(rows: list) -> dict:
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("a list of inputs must hold one dict per clip (rows of a dataset)")
    return {key: [row[key] for row in rows] for key in rows[0]}


class CoupledMambaFeatureProcessor(HubProcessorMixin, FeatureExtractionMixin):
    r"""Puts the modalities of a batch of clips on one time axis for `CoupledMambaModel` (see the module docstring).

    Args:
        modalities (`list[str]`), input_sizes (`list[int]` or `dict[str, int]`): as in `CoupledMambaConfig`
            (default text 768, audio 74, vision 35: MMSA's MOSEI features).
        sequence_length (`int` or `None`): T for unaligned data (every modality resampled to T steps ignoring its
            padding); None passes word-aligned data through.
        padding_side (`str`): "right" (default) or "left". The model gives the same outputs for both.
        padding_value (`float`): value of the padded steps.
        max_length (`int` or `None`): aligned mode pads every clip to this length (default: the batch's longest);
            a longer clip raises unless `truncation=True` in the call, which keeps its first `max_length` steps.
        dtype (`str`): dtype of the features: "float32" (default), "float16", "bfloat16" (torch tensors only) or
            "float64". Masks stay int64 and labels keep theirs (float32 scores, int64 classes).
    """

    family_name = "coupled_mamba"  # the registry family whose remote-code bundle holds this class

    model_input_names_suffixes = ("features", "attention_mask")

    def __init__(
        self,
        modalities=None,
        input_sizes=DEFAULT_INPUT_SIZES,
        sequence_length=None,
        padding_side="right",
        padding_value=0.0,
        max_length=None,
        dtype="float32",
        **kwargs,
    ):
        self.modalities, self.input_sizes = split_modalities(modalities, input_sizes)
        self.sequence_length = sequence_length
        self.padding_side = padding_side
        self.padding_value = padding_value
        self.max_length = max_length
        self.dtype = dtype
        self._validate()
        super().__init__(**kwargs)

    @classmethod
    def from_model_config(cls, config: CoupledMambaConfig, **kwargs) -> CoupledMambaFeatureProcessor:
        """A processor for the modalities and feature sizes of `config`."""
        return cls(modalities=config.modalities, input_sizes=config.input_sizes, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return [f"{m}_{suffix}" for suffix in self.model_input_names_suffixes for m in self.modalities]

    def _validate(self) -> None:
        validate_modalities(self.modalities, self.input_sizes)
        self._check_settings(self.sequence_length, self.max_length, self.padding_side)
        value = self.padding_value
        if not is_finite_number(value):
            raise ValueError(f"padding_value must be a finite number, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")

    @staticmethod
    def _check_settings(sequence_length, max_length, padding_side) -> None:
        if sequence_length is not None and not is_positive_int(sequence_length):
            raise ValueError(f"sequence_length must be a positive integer or None, got {sequence_length!r}")
        if max_length is not None and not is_positive_int(max_length):
            raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
        if padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {padding_side!r}")

    # ---------------------------------------------------------------------------------------------- call
    def __call__(
        self,
        features: dict | list | None = None,
        *,
        return_tensors: str | None = "pt",
        sequence_length: int | None = ...,
        max_length: int | None = ...,
        truncation: bool = False,
        padding_side: str | None = None,
        **named,
    ) -> BatchFeature:
        """Features of a batch of clips → `BatchFeature` of model inputs.

        Args:
            features: a dict of columns or a list of rows holding `{m}_features` (and optionally `{m}_lengths`,
                `label` / `labels`); other keys are ignored. Keywords `{m}_features=...` work too and take precedence.
            return_tensors: "pt" (default), "np" or None (numpy).
            sequence_length, max_length, padding_side: override the processor's settings for this call.
            truncation: in aligned mode, cut clips longer than `max_length` instead of raising.
        """
        columns = _rows_to_columns(features) if isinstance(features, list) else dict(features or {})
        columns.update(named)
        settings = self._call_settings(sequence_length, max_length, padding_side, return_tensors)
        clips = self._read_clips(columns)
        if settings["sequence_length"] is not None:
            length = settings["sequence_length"]
            data = self._resampled(clips, length)
        else:
            data = self._aligned(clips, settings, truncation)
        labels = columns.get("labels", columns.get("label"))
        if labels is not None:
            data["labels"] = self._labels(labels, len(next(iter(clips.values()))))
        batch = BatchFeature(data=data, tensor_type=return_tensors)
        return self._cast(batch, return_tensors)

    def _call_settings(self, sequence_length, max_length, padding_side, return_tensors) -> dict:
        settings = {
            "sequence_length": self.sequence_length if sequence_length is ... else sequence_length,
            "max_length": self.max_length if max_length is ... else max_length,
            "padding_side": padding_side or self.padding_side,
        }
        self._check_settings(**settings)
        if self.dtype == "bfloat16" and return_tensors != "pt":
            raise ValueError('dtype "bfloat16" needs return_tensors="pt" (numpy has no bfloat16)')
        return settings

    # --------------------------------------------------------------------------------------------- clips
    def _read_clips(self, columns: dict) -> dict[str, list[np.ndarray]]:
        """{modality: [(n_i, D_m) float32 real frames per clip]}, checked."""
        expected = {f"{m}_{suffix}" for m in self.modalities for suffix in ("features", "lengths")}
        unknown = sorted(key for key in columns if key.endswith(("_features", "_lengths")) and key not in expected)
        if unknown:
            raise ValueError(f"unknown modality input(s) {unknown}: this processor's modalities are {self.modalities}")
        clips = {}
        for modality, size in zip(self.modalities, self.input_sizes, strict=True):
            name = f"{modality}_features"
            if columns.get(name) is None:
                raise ValueError(f"{name} is missing: this processor expects {', '.join(self.modalities)} features")
            batch = self._split_batch(name, columns[name], columns.get(f"{modality}_lengths"))
            clips[modality] = [self._check_clip(f"{name}[{i}]", clip, size) for i, clip in enumerate(batch)]
        counts = {modality: len(batch) for modality, batch in clips.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"every modality must hold the same number of clips, got {counts}")
        return clips

    @staticmethod
    def _split_batch(name: str, values, lengths) -> list[np.ndarray]:
        """One clip, a list of clips or a padded (b, n, D) array → a list of (n_i, D) arrays cut to `lengths`."""
        if isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray) and values.dtype == object):
            if len(values) == 0:
                raise ValueError(f"{name} holds no clip")
            first = _to_numpy(values[0])
            batch = [_to_numpy(values)] if first.ndim == 1 else [_to_numpy(clip) for clip in values]
        else:
            array = _to_numpy(values)
            batch = [array] if array.ndim == 2 else list(array) if array.ndim == 3 else [array]
        if lengths is None:
            return batch
        lengths = np.asarray(_to_numpy(lengths)).reshape(-1)
        if len(lengths) != len(batch):
            raise ValueError(f"{name}: {len(lengths)} lengths for {len(batch)} clips")
        if ((lengths < 0) | (lengths != np.round(lengths))).any():
            raise ValueError(f"{name}: lengths must be whole non-negative numbers, got {lengths.tolist()}")
        for index, (clip, length) in enumerate(zip(batch, lengths.astype(int), strict=True)):
            if clip.ndim >= 1 and length > clip.shape[0]:
                raise ValueError(f"{name}[{index}]: length {length} exceeds the {clip.shape[0]} stored steps")
        return [clip[:length] for clip, length in zip(batch, lengths.astype(int), strict=True)]

    @staticmethod
    def _check_clip(name: str, clip: np.ndarray, size: int) -> np.ndarray:
        if clip.ndim != 2 or clip.shape[1] != size:
            raise ValueError(f"{name} must have shape (steps, {size}) (input_sizes), got {clip.shape}")
        if clip.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 real steps); every modality of a clip needs at least one step")
        bad = ~np.isfinite(clip).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{name} holds NaN or infinite values at step(s) {np.flatnonzero(bad)[:8].tolist()}; replace them "
                "first (MMSA and MulT set -inf audio features to 0, as `training.data.load_mmsa` does)"
            )
        return clip

    # ------------------------------------------------------------------------------------ to one time axis
    def _resampled(self, clips: dict, length: int) -> dict[str, np.ndarray]:
        data = {}
        for modality, batch in clips.items():
            data[f"{modality}_features"] = np.stack([resample_segments(clip, length) for clip in batch])
            data[f"{modality}_attention_mask"] = np.ones((len(batch), length), dtype=np.int64)
        return data

    def _aligned(self, clips: dict, settings: dict, truncation: bool) -> dict[str, np.ndarray]:
        lengths = np.array([[clip.shape[0] for clip in batch] for batch in clips.values()])  #          (M, b)
        mismatched = np.flatnonzero((lengths != lengths[0]).any(axis=0))
        if mismatched.size:
            index = mismatched[0]
            found = ", ".join(f"{m} {lengths[i, index]}" for i, m in enumerate(clips))
            raise ValueError(
                f"clip {index} has modalities of different lengths ({found}): aligned input needs one length per "
                "clip; set sequence_length to resample unaligned data onto a common time axis"
            )
        target = settings["max_length"] or int(lengths.max())
        if lengths.max() > target and not truncation:
            raise ValueError(f"a clip has {lengths.max()} steps, more than max_length={target}; pass truncation=True")
        data = {}
        for modality, batch in clips.items():
            padded, mask = self._pad([clip[:target] for clip in batch], target, settings["padding_side"])
            data[f"{modality}_features"], data[f"{modality}_attention_mask"] = padded, mask
        return data

    def _pad(self, batch: list[np.ndarray], length: int, side: str) -> tuple[np.ndarray, np.ndarray]:
        padded = np.full((len(batch), length, batch[0].shape[1]), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for index, clip in enumerate(batch):
            steps = slice(0, len(clip)) if side == "right" else slice(length - len(clip), length)
            padded[index, steps], mask[index, steps] = clip, 1
        return padded, mask

    @staticmethod
    def _labels(labels, count: int) -> np.ndarray:
        array = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
        if array.shape[:1] != (count,):
            raise ValueError(f"labels must hold one value per clip ({count}), got shape {array.shape}")
        if np.issubdtype(array.dtype, np.integer):
            return array.astype(np.int64)
        return array.astype(np.float32)

    def _cast(self, batch: BatchFeature, return_tensors) -> BatchFeature:
        """Features to `self.dtype`; masks and labels keep theirs (a bf16 score 1.4 would read 1.398)."""
        if self.dtype == "float32":
            return batch
        if return_tensors == "pt":
            import torch

            cast = lambda tensor: tensor.to(getattr(torch, self.dtype))  # noqa: E731
        else:
            cast = lambda array: array.astype(self.dtype)  # noqa: E731
        for key in [key for key in batch if key.endswith("_features")]:
            batch[key] = cast(batch[key])
        return batch


__all__ = ["CoupledMambaFeatureProcessor", "resample_segments"]
