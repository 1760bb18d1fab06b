"""MambaVisionImageProcessor: timm's evaluation transform in NumPy/PIL, every input kind, save/load, the pipeline."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, pipeline
from transformers.image_utils import PILImageResampling
from transformers.models.auto.image_processing_auto import AutoImageProcessor  # 5.17's top-level one needs torchvision

from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification, MambaVisionImageProcessor

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@pytest.fixture
def photo() -> np.ndarray:
    """A 300 × 400 (h × w) RGB uint8 image with structure at every scale."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)


@pytest.fixture
def smooth() -> np.ndarray:
    """A smooth 120 × 90 image (no overshoot at uint8 limits), for comparing uint8 with float inputs."""
    rows, cols = np.mgrid[0:120, 0:90]
    channels = [60 + 40 * np.sin(rows / 13.0), 128 + 50 * np.cos(cols / 9.0), 30 + (rows + cols) / 2.0]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def by_hand(image: np.ndarray, resized_wh: tuple[int, int], top: int, left: int, size: int = 224) -> np.ndarray:
    """The eval transform with its numbers worked out by hand: PIL bicubic, crop, ÷255, normalise, CHW."""
    resized = np.asarray(Image.fromarray(image).resize(resized_wh, Image.Resampling.BICUBIC))
    cropped = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    return ((cropped - MEAN) / STD).transpose(2, 0, 1)


def test_center_mode_matches_timm_by_hand(photo):
    processor = MambaVisionImageProcessor(crop_pct=0.875)
    pixel_values = processor(photo, return_tensors="np").pixel_values
    # scale = floor(224 / 0.875) = 256: shorter side 300 → 256, longer 400 → int(256 · 400 / 300) = 341;
    # crop offsets round((256 - 224) / 2) = 16 and round((341 - 224) / 2) = round(58.5) = 58.
    assert pixel_values.shape == (1, 3, 224, 224) and pixel_values.dtype == np.float32
    np.testing.assert_allclose(pixel_values[0], by_hand(photo, (341, 256), 16, 58), atol=1e-6)


def test_squash_mode_matches_timm_by_hand(photo):
    processor = MambaVisionImageProcessor(crop_pct=0.93, crop_mode="squash")
    pixel_values = processor(photo, return_tensors="np").pixel_values
    # scale = floor(224 / 0.93) = 240 on both sides (aspect ratio dropped), crop offset (240 - 224) / 2 = 8.
    np.testing.assert_allclose(pixel_values[0], by_hand(photo, (240, 240), 8, 8), atol=1e-6)


def test_crop_pct_one_is_shorter_side_resize_then_center_crop(photo):
    pixel_values = MambaVisionImageProcessor()(photo, return_tensors="np").pixel_values
    np.testing.assert_allclose(pixel_values[0], by_hand(photo, (298, 224), 0, 37), atol=1e-6)


def test_bilinear_reproduces_the_hub_readme_snippet(photo):
    processor = MambaVisionImageProcessor(resample=PILImageResampling.BILINEAR)
    resized = np.asarray(Image.fromarray(photo).resize((298, 224), Image.Resampling.BILINEAR))
    expected = ((resized[:, 37:261].astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    np.testing.assert_allclose(processor(photo, return_tensors="np").pixel_values[0], expected, atol=1e-6)


def test_pil_numpy_hwc_chw_and_torch_inputs_agree(photo):
    processor = MambaVisionImageProcessor(crop_pct=0.875)
    expected = processor(Image.fromarray(photo), return_tensors="np").pixel_values
    for image in (photo, photo.transpose(2, 0, 1), torch.from_numpy(photo).permute(2, 0, 1), torch.from_numpy(photo)):
        np.testing.assert_array_equal(processor(image, return_tensors="np").pixel_values, expected)


def test_float_images_are_resized_in_float(smooth):
    processor = MambaVisionImageProcessor(size=64, crop_pct=0.9)
    from_uint8 = processor(smooth, return_tensors="np").pixel_values
    from_float = processor(smooth.astype(np.float32), return_tensors="np").pixel_values
    from_unit = processor(torch.from_numpy(smooth / 255.0).permute(2, 0, 1), do_rescale=False, return_tensors="np")
    np.testing.assert_allclose(from_float, from_uint8, atol=0.03)  # uint8 resize rounds to whole levels
    np.testing.assert_allclose(from_unit.pixel_values, from_float, atol=1e-4)


def test_batches_lists_and_4d_arrays(photo, smooth):
    processor = MambaVisionImageProcessor(size=64)
    single = [processor(image, return_tensors="np").pixel_values[0] for image in (photo, smooth)]
    batch = processor([photo, Image.fromarray(smooth)], return_tensors="pt").pixel_values
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 3, 64, 64) and batch.dtype == torch.float32
    np.testing.assert_array_equal(batch.numpy(), np.stack(single))
    stacked = processor(np.stack([photo, photo]), return_tensors="np").pixel_values
    np.testing.assert_array_equal(stacked, np.stack([single[0], single[0]]))


def test_batch_layouts_sizes_and_inputs_left_alone(photo, smooth):
    """The batch is normalised as one array: channels-last is the transpose of channels-first, images of several
    sizes (no resize, no tensors) come back as a list each equal to the image alone, and a float input is not
    modified by the in-place steps."""
    processor = MambaVisionImageProcessor(size=64)
    first = processor([photo, smooth], return_tensors="np").pixel_values
    last = processor([photo, smooth], return_tensors="np", data_format="channels_last").pixel_values
    assert last.shape == (2, 64, 64, 3) and last.flags.c_contiguous and first.flags.c_contiguous
    np.testing.assert_array_equal(last, first.transpose(0, 2, 3, 1))
    unresized = MambaVisionImageProcessor(do_resize=False, do_center_crop=False)
    floats = smooth.astype(np.float32)
    kept = floats.copy()
    mixed = unresized([photo, floats]).pixel_values
    assert [image.shape for image in mixed] == [(3, 300, 400), (3, 120, 90)]
    np.testing.assert_allclose(mixed[1], ((kept / 255.0 - MEAN) / STD).transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(mixed[0], unresized(photo).pixel_values[0])
    np.testing.assert_array_equal(floats, kept)


def test_grey_and_rgba_images_become_rgb(smooth):
    processor = MambaVisionImageProcessor(size=32)
    grey = smooth[..., 0]
    expected = processor(np.repeat(grey[..., None], 3, axis=-1), return_tensors="np").pixel_values
    np.testing.assert_array_equal(processor(grey, return_tensors="np").pixel_values, expected)
    np.testing.assert_array_equal(processor(Image.fromarray(grey), return_tensors="np").pixel_values, expected)
    rgba = np.concatenate([smooth, np.full((*smooth.shape[:2], 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(
        processor(Image.fromarray(rgba), return_tensors="np").pixel_values,
        processor(smooth, return_tensors="np").pixel_values,
    )


def test_small_images_without_resize_are_zero_padded_by_the_crop():
    image = np.full((10, 12, 3), 255, np.uint8)
    pixel_values = MambaVisionImageProcessor(size=16, do_resize=False, do_normalize=False)(image).pixel_values[0]
    assert pixel_values.shape == (3, 16, 16)
    assert pixel_values[:, 3:13, 2:14].min() == 1.0 and pixel_values.sum() == 3 * 10 * 12


def test_save_load_and_auto_image_processor(tmp_path):
    processor = MambaVisionImageProcessor(size=256, crop_pct=0.93, crop_mode="squash", image_mean=[0.5] * 3)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "MambaVisionImageProcessor" and saved["crop_mode"] == "squash"
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded) is MambaVisionImageProcessor
    # The saved file also names the class for remote code (mamba_multimodal.hub); the settings are the same.
    settings = loaded.to_dict()
    assert settings.pop("auto_map") == {"AutoImageProcessor": "image_processing_mambavision.MambaVisionImageProcessor"}
    assert settings == processor.to_dict()
    image = np.random.default_rng(1).integers(0, 256, (80, 70, 3), dtype=np.uint8)
    np.testing.assert_array_equal(loaded(image).pixel_values, processor(image).pixel_values)


def test_built_from_a_model_config():
    config = MambaVisionConfig.from_preset("mambavision-l2-512-21k", mean=[0.5, 0.5, 0.5])
    processor = MambaVisionImageProcessor.from_model_config(config)
    assert (processor.size, processor.crop_pct, processor.crop_mode) == ({"height": 512, "width": 512}, 0.93, "squash")
    assert processor.image_mean == [0.5, 0.5, 0.5] and processor.image_std == [0.229, 0.224, 0.225]


def test_nvidia_repository_without_a_preprocessor_file_reads_config_json(tmp_path):
    nvidia_config = {
        "model_type": "mambavision", "depths": [3, 3, 12, 5], "dim": 196, "in_dim": 64,
        "num_heads": [4, 8, 16, 32], "window_size": [8, 8, 32, 16], "mlp_ratio": 4, "drop_path_rate": 0.3,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.93, "crop_mode": "squash",
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(nvidia_config))
    processor = MambaVisionImageProcessor.from_pretrained(tmp_path)
    assert (processor.size, processor.crop_pct, processor.crop_mode) == ({"height": 512, "width": 512}, 0.93, "squash")


def nvidia_layout(folder, model):
    """A folder laid out as NVIDIA's MambaVision repositories: weights and a config.json whose preprocessing fields
    are `mean`, `std`, `crop_pct`, `crop_mode`; no preprocessor_config.json."""
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").unlink(missing_ok=True)
    config = json.loads((folder / "config.json").read_text())
    config.update(mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3], crop_pct=0.875, crop_mode="center")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_nvidia_repository_loads_through_the_auto_classes_and_the_pipeline(tmp_path, photo):
    """transformers' Auto lookup reads no config.json of ours (and 5.25 bypasses the class's own lookup): the
    package makes AutoImageProcessor, AutoProcessor and pipeline() reach the NVIDIA layout all the same."""
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", id2label={0: "cat", 1: "dog", 2: "bird"})
    model = MambaVisionForImageClassification(config).eval()
    folder = nvidia_layout(tmp_path, model)
    stated = MambaVisionImageProcessor(
        size=config.image_size,
        crop_pct=0.875,
        crop_mode="center",
        image_mean=[0.5, 0.4, 0.3],
        image_std=[0.2, 0.25, 0.3],
    )
    expected = stated(photo, return_tensors="np").pixel_values
    for auto in (AutoImageProcessor, AutoProcessor):
        loaded = auto.from_pretrained(folder)
        assert type(loaded) is MambaVisionImageProcessor, auto.__name__
        np.testing.assert_array_equal(loaded(photo, return_tensors="np").pixel_values, expected)
    predictions = pipeline("image-classification", model=str(folder), device="cpu")(Image.fromarray(photo), top_k=3)
    with torch.no_grad():
        probabilities = model(torch.from_numpy(expected)).logits[0].softmax(-1)
    assert [p["label"] for p in predictions] == [
        config.id2label[i] for i in probabilities.argsort(descending=True).tolist()
    ]
    np.testing.assert_allclose([p["score"] for p in predictions], probabilities.sort(descending=True).values, atol=1e-5)


def test_a_folder_without_any_preprocessing_keeps_transformers_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(OSError, match=r"preprocessor_config\.json"):
        AutoImageProcessor.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_pct": 0.0}, r"crop_pct must be a number in \(0, 1\]"),
        ({"crop_mode": "border"}, "crop_mode must be one of"),
        ({"size": {"shortest_edge": 224}}, "size must be a positive int"),
        ({"image_std": [0.2, 0.2, 0.0]}, "image_std must be positive"),
        ({"image_mean": [0.5]}, r"image_mean must have 3 entries"),
    ],
)
def test_invalid_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MambaVisionImageProcessor(**kwargs)


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        ([], ValueError, "images is an empty list"),
        (np.zeros((2, 3, 4, 5, 6), np.uint8), ValueError, "an image must have 2 or 3 dimensions"),
        (np.zeros((20, 20, 7), np.uint8), ValueError, "cannot find the channel axis"),
        (np.zeros((0, 20, 3), np.uint8), ValueError, "an image has no pixels"),
        ("cat.jpg", TypeError, "images must be PIL images, numpy arrays or torch tensors"),
    ],
)
def test_bad_images_raise_clear_errors(images, error, message):
    with pytest.raises(error, match=message):
        MambaVisionImageProcessor()(images)


def test_image_classification_pipeline_end_to_end(smooth):
    labels = {index: name for index, name in enumerate(["cat", "dog", "bird", "fish", "frog"])}
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", id2label=labels)
    model = MambaVisionForImageClassification(config).eval()
    processor = MambaVisionImageProcessor.from_model_config(config)
    classifier = pipeline("image-classification", model=model, image_processor=processor, device="cpu")
    predictions = classifier(Image.fromarray(smooth), top_k=5)
    with torch.no_grad():
        logits = model(processor(smooth, return_tensors="pt").pixel_values).logits[0]
    expected = sorted(zip(logits.softmax(-1).tolist(), labels.values(), strict=True), reverse=True)
    assert [p["label"] for p in predictions] == [name for _, name in expected]
    np.testing.assert_allclose([p["score"] for p in predictions], [score for score, _ in expected], atol=1e-5)
