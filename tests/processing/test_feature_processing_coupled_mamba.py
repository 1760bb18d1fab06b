"""CoupledMambaFeatureProcessor: aligned pass-through, padding-free resampling, masks, errors, save/load, Auto class."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from mamba_multimodal import (
    CoupledMambaConfig,
    CoupledMambaFeatureProcessor,
    CoupledMambaForSequenceClassification,
)
from mamba_multimodal.processing.feature_processing_coupled_mamba import resample_segments

SIZES = {"text": 4, "audio": 3, "vision": 2}


@pytest.fixture
def processor():
    return CoupledMambaFeatureProcessor(input_sizes=SIZES)


def clips(lengths, seed=0) -> dict:
    """{m}_features: one list of (n, D_m) clips per modality, lengths[i] per clip (the same for all modalities)."""
    rng = np.random.default_rng(seed)
    return {f"{m}_features": [rng.normal(size=(n, size)).astype(np.float32) for n in lengths] for m, size in
            SIZES.items()}  # fmt: skip


# ------------------------------------------------------------------------------------------- aligned
def test_aligned_clips_pass_through_and_are_padded_with_masks(processor):
    inputs = clips([5, 3])
    batch = processor(**inputs, labels=[0.5, -1.2])
    assert set(batch) == {*processor.model_input_names, "labels"}
    for m, size in SIZES.items():
        features, mask = batch[f"{m}_features"], batch[f"{m}_attention_mask"]
        assert features.shape == (2, 5, size) and features.dtype == torch.float32
        assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]] and mask.dtype == torch.int64
        assert torch.equal(features[1, :3], torch.from_numpy(inputs[f"{m}_features"][1]))
        assert torch.equal(features[1, 3:], torch.zeros(2, size))
    assert batch["labels"].dtype == torch.float32


def test_left_padding_and_max_length(processor):
    batch = processor(**clips([2, 3]), padding_side="left", max_length=4, return_tensors="np")
    assert batch["text_attention_mask"].tolist() == [[0, 0, 1, 1], [0, 1, 1, 1]]
    assert isinstance(batch["text_features"], np.ndarray) and batch["text_features"].shape == (2, 4, 4)
    with pytest.raises(ValueError, match="truncation=True"):
        processor(**clips([6]), max_length=4)
    assert processor(**clips([6]), max_length=4, truncation=True)["audio_features"].shape == (1, 4, 3)


def test_one_clip_a_padded_array_with_lengths_rows_and_tensors(processor):
    inputs = clips([3])
    single = processor(**{k: v[0] for k, v in inputs.items()})
    padded = {k: np.concatenate([v[0], np.full((4, v[0].shape[1]), 9.0)])[None] for k, v in inputs.items()}
    lengths = {f"{m}_lengths": [3] for m in SIZES}
    from_padded = processor(**padded, **lengths)
    rows = processor([{**{k: torch.from_numpy(v[0]) for k, v in inputs.items()}, "label": 2, "id": "a$_$1"}])
    for key in processor.model_input_names:
        assert torch.equal(single[key], from_padded[key]) and torch.equal(single[key], rows[key])
    assert rows["labels"].tolist() == [2] and rows["labels"].dtype == torch.int64


# -------------------------------------------------------------------------------------------- resampling
def test_segment_means_ignore_the_padding():
    """Unaligned MMSA clips are zero-padded to 500 frames; only the real frames may enter the means."""
    processor = CoupledMambaFeatureProcessor(input_sizes=SIZES, sequence_length=3)
    rng = np.random.default_rng(1)
    text, vision = rng.normal(size=(6, 4)), rng.normal(size=(3, 2))
    audio = np.zeros((1, 500, 3), dtype=np.float32)
    audio[0, :9] = np.arange(27).reshape(9, 3)
    batch = processor(text_features=text, audio_features=audio, audio_lengths=[9], vision_features=vision)
    expected_audio = np.arange(27).reshape(3, 3, 3).mean(1)  # frames 0-2, 3-5, 6-8
    np.testing.assert_allclose(batch["audio_features"][0].numpy(), expected_audio, rtol=1e-6)
    np.testing.assert_allclose(batch["text_features"][0].numpy(), text.reshape(3, 2, 4).mean(1), rtol=1e-6)
    np.testing.assert_allclose(batch["vision_features"][0].numpy(), vision, rtol=1e-6)  # n = T: unchanged
    assert all(batch[f"{m}_attention_mask"].all() for m in SIZES)


def test_resampling_segments_and_upsampling():
    frames = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_allclose(resample_segments(frames, 4)[:, 0], [0.5, 3.0, 5.5, 8.0])  # [0,2) [2,5) [5,7) [7,10)
    np.testing.assert_allclose(resample_segments(frames[:2], 5)[:, 0], [0, 0, 0, 1, 1])  # every segment a frame
    np.testing.assert_allclose(resample_segments(frames, 1)[:, 0], [4.5])


def test_resampled_clips_feed_the_model():
    config = CoupledMambaConfig(input_sizes=SIZES, hidden_size=8, state_size=4, num_hidden_layers=1)
    processor = CoupledMambaFeatureProcessor.from_model_config(config, sequence_length=6)
    rng = np.random.default_rng(2)
    batch = processor(
        text_features=[rng.normal(size=(4, 4)), rng.normal(size=(7, 4))],
        audio_features=[rng.normal(size=(40, 3)), rng.normal(size=(55, 3))],
        vision_features=[rng.normal(size=(30, 2)), rng.normal(size=(3, 2))],
        labels=[1.0, -0.5],
    )
    outputs = CoupledMambaForSequenceClassification(config)(**batch)
    assert outputs.logits.shape == (2, 1) and outputs.loss.ndim == 0


# ----------------------------------------------------------------------------------------- dtype, I/O
def test_dtype(processor):
    assert processor.__class__(input_sizes=SIZES, dtype="bfloat16")(**clips([2]))["text_features"].dtype == (
        torch.bfloat16
    )
    half = CoupledMambaFeatureProcessor(input_sizes=SIZES, dtype="float16")(**clips([2]), return_tensors="np")
    assert half["audio_features"].dtype == np.float16 and half["audio_attention_mask"].dtype == np.int64


@pytest.mark.parametrize(
    ("dtype", "return_tensors"),
    [("bfloat16", "pt"), ("float16", "pt"), ("float64", "pt"), ("float16", "np"), ("float64", "np")],
)
def test_dtype_casts_the_features_only_labels_keep_their_values_and_dtype(dtype, return_tensors):
    processor = CoupledMambaFeatureProcessor(input_sizes=SIZES, dtype=dtype)
    name = lambda array: str(array.dtype).removeprefix("torch.")  # noqa: E731
    scores = processor(**clips([2, 3]), labels=[1.4, -0.6], return_tensors=return_tensors)
    classes = processor(**clips([2, 3]), labels=[2, 0], return_tensors=return_tensors)
    assert name(scores["text_features"]) == dtype and name(scores["text_attention_mask"]) == "int64"
    assert name(scores["labels"]) == "float32" and scores["labels"].tolist() == np.float32([1.4, -0.6]).tolist()
    assert name(classes["labels"]) == "int64" and classes["labels"].tolist() == [2, 0]


MODULE = "feature_processing_coupled_mamba"


def test_save_load_round_trip_and_auto_feature_extractor(tmp_path):
    processor = CoupledMambaFeatureProcessor(
        input_sizes={"vision": 2, "audio": 3}, sequence_length=5, padding_side="left"
    )
    processor.save_pretrained(tmp_path)
    for loaded in (
        CoupledMambaFeatureProcessor.from_pretrained(tmp_path),
        AutoFeatureExtractor.from_pretrained(tmp_path),
    ):
        assert type(loaded) is CoupledMambaFeatureProcessor
        # The saved file also names the class for remote code (mamba_multimodal.hub); the settings are the same.
        assert loaded.to_dict().pop("auto_map") == {"AutoFeatureExtractor": f"{MODULE}.CoupledMambaFeatureProcessor"}
        assert {k: v for k, v in loaded.to_dict().items() if k != "auto_map"} == processor.to_dict()
        assert loaded.modalities == ["vision", "audio"]


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x.pop("vision_features"), "vision_features is missing"),
        (lambda x: x["audio_features"].__setitem__(1, np.zeros((3, 5))), r"audio_features\[1\] must have shape"),
        (lambda x: x["text_features"][0].__setitem__((2, 1), np.nan), r"text_features\[0\] holds NaN or infinite"),
        (lambda x: x["audio_features"][1].__setitem__((0, 0), -np.inf), "NaN or infinite values at step"),
        (lambda x: x["vision_features"].__setitem__(0, np.zeros((0, 2))), r"vision_features\[0\] is empty"),
        (lambda x: x["vision_features"].__setitem__(0, np.zeros((4, 2))), "different lengths"),
        (lambda x: x["audio_features"].pop(), "same number of clips"),
        (lambda x: x.update(depth_features=[np.zeros((3, 1))]), "unknown modality"),
        (lambda x: x.update(audio_lengths=[3, 9]), "exceeds the 3 stored steps"),
    ],
)
def test_bad_inputs_raise_clear_errors(processor, change, message):
    inputs = clips([5, 3])
    change(inputs)
    with pytest.raises(ValueError, match=message):
        processor(**inputs)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"sequence_length": 0}, "sequence_length"),
        ({"padding_side": "middle"}, "padding_side"),
        ({"dtype": "int8"}, "dtype"),
        ({"padding_value": float("nan")}, "padding_value"),
        ({"max_length": -1}, "max_length"),
        ({"input_sizes": [4, 3]}, "input_sizes"),
    ],
)
def test_bad_settings_raise_naming_the_field(settings, field):
    with pytest.raises(ValueError, match=field):
        CoupledMambaFeatureProcessor(**settings)
