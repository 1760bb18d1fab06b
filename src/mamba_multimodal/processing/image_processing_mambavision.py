"""Image processor for MambaVision: NVIDIA's evaluation preprocessing (timm's `transforms_imagenet_eval`), in NumPy/PIL.

    scale = floor(size / crop_pct)
    crop_mode "center": resize the shorter side to `scale` (aspect ratio kept), center-crop `size`
    crop_mode "squash": resize both sides to `scale` (aspect ratio ignored), center-crop `size`
    then ÷ 255 and (x - mean) / std with ImageNet statistics; bicubic resampling

NVIDIA's accuracy numbers use this pipeline with each variant's `crop_pct`/`crop_mode` (bicubic); the snippet in
their Hub README goes through timm's `create_transform`, which resamples bilinearly: pass
`resample=PILImageResampling.BILINEAR` to reproduce it. uint8 images are resized by PIL exactly as torchvision does
it for timm, so the two agree bit for bit before normalisation; float images are resized per channel in PIL's 32-bit
float mode.

No torchvision: no CPU build of it installs beside a CPU torch, and a CUDA one breaks transformers' imports.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np
from PIL import Image
from transformers.configuration_utils import PreTrainedConfig
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ImagesKwargs
from transformers.utils import CONFIG_NAME, logging

from ..configuration.configuration_mambavision import (
    CROP_MODES,
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    MambaVisionConfig,
    native_image_size,
)
from ..hub_mixin import HubProcessorMixin

logger = logging.get_logger(__name__)

_CHANNEL_COUNTS = (1, 3, 4)  # grey, RGB, RGBA
_SIXTEEN_BITS_PER_EIGHT = 257  # 65535 / 255: a 16-bit pixel on the 8-bit scale that rescale_factor 1/255 expects
_DATA_FORMATS = ("channels_first", "channels_last")


class MambaVisionImageProcessorKwargs(ImagesKwargs, total=False):
    """`ImagesKwargs` plus the two timm evaluation settings."""

    crop_pct: float
    crop_mode: str


# -------------------------------------------------------------------------------------------- inputs
def _to_numpy(image: Any) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image)
    if isinstance(image, np.ndarray):
        return image
    if type(image).__module__.startswith("torch"):
        return image.detach().cpu().numpy()
    raise TypeError(
        f"images must be PIL images, numpy arrays or torch tensors (or a list of them), got {type(image).__name__}"
    )


def _split_batch(images: Any) -> list:
    """One image or a batch (list/tuple, or a 4-D array/tensor) → a list of single images."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list: give at least one image")
        return [image for batch in map(_split_batch, images) for image in batch]
    if hasattr(images, "ndim") and images.ndim == 4:
        if images.shape[0] == 0:
            raise ValueError(f"images is an empty batch, got shape {tuple(images.shape)}")
        return list(images)
    return [images]


def _to_hwc(image: np.ndarray, input_data_format: str | None) -> np.ndarray:
    """(h, w), (h, w, c) or (c, h, w) → (h, w, 3); grey is repeated, an alpha channel dropped."""
    if image.ndim == 2:
        image = image[:, :, None]
    elif image.ndim != 3:
        raise ValueError(f"an image must have 2 or 3 dimensions (h, w[, c]) or (c, h, w), got shape {image.shape}")
    elif input_data_format == "channels_first" or (
        input_data_format is None and image.shape[0] in _CHANNEL_COUNTS and image.shape[-1] not in _CHANNEL_COUNTS
    ):
        image = image.transpose(1, 2, 0)
    if image.shape[-1] not in _CHANNEL_COUNTS:
        raise ValueError(
            f"cannot find the channel axis of an image of shape {image.shape}: expected 1, 3 or 4 channels first or "
            "last; pass input_data_format='channels_first' or 'channels_last'"
        )
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _prepare(image: Any, input_data_format: str | None) -> np.ndarray:
    """A single image → (h, w, 3) numpy array, uint8 when it was uint8, else float32 on the 0-255 scale: 16-bit
    images (PIL "I;16" and "I", numpy uint16) are divided by 257 (65535 → 255); PIL's conversion to RGB would clip
    them to white. Other PIL images are converted to RGB; PIL "F" images stay floats, as numpy floats."""
    wide = isinstance(image, Image.Image) and (image.mode.startswith("I") or image.mode == "F")
    if isinstance(image, Image.Image) and image.mode != "RGB" and not wide:
        image = image.convert("RGB")
    array = _to_numpy(image)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"image pixels must be integers or floats, got dtype {array.dtype}")
    array = _to_hwc(array, None if isinstance(image, Image.Image) else input_data_format)
    if 0 in array.shape:
        raise ValueError(f"an image has no pixels, shape {array.shape}")
    if array.dtype == np.uint16 or (wide and image.mode == "I"):  # PIL opens 16-bit PNGs as "I;16" or "I"
        return (array.astype(np.float32) / np.float32(_SIXTEEN_BITS_PER_EIGHT)).astype(np.float32)
    return array if array.dtype == np.uint8 else array.astype(np.float32)


# -------------------------------------------------------------------------------------------- transforms
def _resize(image: np.ndarray, height: int, width: int, resample: int) -> np.ndarray:
    """PIL resize of a (h, w, 3) image; uint8 as one RGB image (what torchvision does for timm), floats per channel."""
    if image.shape[:2] == (height, width):
        return image
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((width, height), resample=resample))
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize((width, height), resample))
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def _shorter_side_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """torchvision's `Resize(int)`: the shorter side becomes `shorter`, the longer one is truncated, not rounded."""
    if height <= width:
        return shorter, int(shorter * width / height)
    return int(shorter * height / width), shorter


def _center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision's `CenterCrop`: offsets round((size - crop) / 2); zero padding when the image is smaller."""
    pad_h, pad_w = max(height - image.shape[0], 0), max(width - image.shape[1], 0)
    if pad_h or pad_w:
        pads = ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0))
        image = np.pad(image, pads)
    top = round((image.shape[0] - height) / 2.0)
    left = round((image.shape[1] - width) / 2.0)
    return image[top : top + height, left : left + width]


def _format_name(value, name: str) -> str | None:
    """ "channels_first" / "channels_last" from a string or transformers' ChannelDimension (None stays None)."""
    if value is None:
        return None
    value = str(getattr(value, "value", value))
    if value not in _DATA_FORMATS:
        raise ValueError(f"{name} must be one of {_DATA_FORMATS}, got {value!r}")
    return value


def _size_dict(size: int | tuple | list | dict | None, name: str) -> dict[str, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"height": size, "width": size}
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        size = {"height": size[0], "width": size[1]}
    if (
        not isinstance(size, dict)
        or set(size) != {"height", "width"}
        or not all(isinstance(v, int) and v > 0 for v in size.values())
    ):
        raise ValueError(f"{name} must be a positive int, (height, width) or {{'height': h, 'width': w}}, got {size!r}")
    return dict(size)


class MambaVisionImageProcessor(HubProcessorMixin, BaseImageProcessor):
    r"""MambaVision's evaluation preprocessing (bicubic resize by `crop_pct`, center crop, ImageNet normalisation).

    Args:
        do_resize (`bool`, defaults to True): resize to `floor(size / crop_pct)` before cropping.
        size (`dict`, defaults to `{"height": 224, "width": 224}`): the model's input size (what comes out).
        crop_pct (`float` in (0, 1], defaults to 1.0): fraction of the resized image kept by the crop.
        crop_mode (`str`, defaults to "center"): "center" resizes the shorter side and keeps the aspect ratio;
            "squash" resizes both sides to the same length.
        resample (`PILImageResampling`, defaults to BICUBIC): the resampling filter.
        do_center_crop (`bool`, defaults to True): crop the center `size` region (zero-padded if smaller).
        do_rescale / rescale_factor: multiply by 1/255. do_normalize / image_mean / image_std: (x - mean) / std.

    Accepts PIL images, numpy arrays (h, w), (h, w, c) or (c, h, w), torch tensors, lists of them, or 4-D batches;
    grey images are repeated to RGB and alpha channels dropped; 16-bit images (PIL "I;16", numpy uint16) are brought
    to the 8-bit scale (÷ 257) rather than clipped. Returns `BatchFeature({"pixel_values": (b, 3, h, w)})`.
    `MambaVisionImageProcessor.from_pretrained` also reads NVIDIA's Hub repositories, whose preprocessing lives in
    `config.json` (`mean`, `std`, `crop_pct`, `crop_mode`) rather than in a `preprocessor_config.json`.
    """

    family_name = "mambavision"  # the registry family whose remote-code bundle holds this class

    model_input_names = ["pixel_values"]
    valid_kwargs = MambaVisionImageProcessorKwargs

    def __init__(
        self,
        do_resize: bool = True,
        size: dict[str, int] | int | None = None,
        crop_pct: float = 1.0,
        crop_mode: str = "center",
        resample: PILImageResampling | int = PILImageResampling.BICUBIC,
        do_center_crop: bool = True,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: list[float] | tuple[float, ...] | None = None,
        image_std: list[float] | tuple[float, ...] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.do_resize = do_resize
        self.size = _size_dict(224 if size is None else size, "size")
        self.crop_pct = crop_pct
        self.crop_mode = crop_mode
        self.resample = resample
        self.do_center_crop = do_center_crop
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = list(IMAGENET_DEFAULT_MEAN if image_mean is None else image_mean)
        self.image_std = list(IMAGENET_DEFAULT_STD if image_std is None else image_std)
        self._check_settings(self.crop_pct, self.crop_mode, self.image_mean, self.image_std)

    # ---------------------------------------------------------------------------------- from a model config
    @classmethod
    def from_model_config(cls, config: MambaVisionConfig | dict, **kwargs) -> MambaVisionImageProcessor:
        """The processor a model configuration describes: its `mean`, `std`, `crop_pct`, `crop_mode` and
        `image_size` where present (NVIDIA's `config.json` has the first four; the size then follows from
        `window_size` as in `MambaVisionConfig`), timm's defaults otherwise."""
        values = config.to_dict() if isinstance(config, PreTrainedConfig) else dict(config)
        settings = {
            "image_mean": values.get("mean"),
            "image_std": values.get("std"),
            "crop_pct": values.get("crop_pct"),
            "crop_mode": values.get("crop_mode"),
            "size": values.get("image_size") or native_image_size(values.get("window_size")),
        }
        settings = {key: value for key, value in settings.items() if value is not None}
        return cls(**{**settings, **kwargs})

    @classmethod
    def get_image_processor_dict(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """`preprocessor_config.json` when there is one; otherwise the preprocessing fields of a MambaVision
        `config.json` (NVIDIA's Hub repositories ship no preprocessor file)."""
        try:
            return super().get_image_processor_dict(pretrained_model_name_or_path, **kwargs)
        except OSError as missing:
            try:
                config_dict, unused = super().get_image_processor_dict(
                    pretrained_model_name_or_path, **{**kwargs, "image_processor_filename": CONFIG_NAME}
                )
            except OSError:
                raise missing from None
            if config_dict.get("model_type") != MambaVisionConfig.model_type:
                raise missing from None
            processor = cls.from_model_config(config_dict)
            return processor.to_dict(), unused

    # ------------------------------------------------------------------------------------------- checks
    @staticmethod
    def _check_settings(crop_pct, crop_mode, image_mean, image_std) -> None:
        if not isinstance(crop_pct, (int, float)) or isinstance(crop_pct, bool) or not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be a number in (0, 1], got {crop_pct!r}")
        if crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {crop_mode!r}")
        for name, value in (("image_mean", image_mean), ("image_std", image_std)):
            if len(value) != 3:
                raise ValueError(f"{name} must have 3 entries (R, G, B), got {list(value)!r}")
        if min(image_std) <= 0:
            raise ValueError(f"image_std must be positive, got {list(image_std)!r}")

    # ------------------------------------------------------------------------------------------- steps
    def resize(self, image: np.ndarray, size: dict[str, int], crop_pct: float, crop_mode: str, resample) -> np.ndarray:
        """timm's eval resize: both sides to floor(size / crop_pct) ("squash"), or the shorter side ("center")."""
        scale_h, scale_w = math.floor(size["height"] / crop_pct), math.floor(size["width"] / crop_pct)
        height, width = image.shape[:2]
        if crop_mode == "squash":
            return _resize(image, scale_h, scale_w, resample)
        if scale_h == scale_w:
            return _resize(image, *_shorter_side_size(height, width, scale_h), resample)
        ratio = max(scale_h / height, scale_w / width)  # non-square output: cover both target sides
        return _resize(image, max(scale_h, round(height * ratio)), max(scale_w, round(width * ratio)), resample)

    def preprocess(
        self,
        images,
        do_resize: bool | None = None,
        size: dict[str, int] | int | None = None,
        crop_pct: float | None = None,
        crop_mode: str | None = None,
        resample: PILImageResampling | int | None = None,
        do_center_crop: bool | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        return_tensors: str | None = None,
        data_format: str = "channels_first",
        input_data_format: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Preprocesses one image or a batch; arguments left as None take the processor's settings.

        Returns:
            `BatchFeature` with "pixel_values": float32 (b, 3, h, w), or (b, h, w, 3) for
            `data_format="channels_last"`; a numpy array, or a tensor per `return_tensors` ("pt", "np").
        """
        given = {
            "do_resize": do_resize,
            "size": None if size is None else _size_dict(size, "size"),
            "crop_pct": crop_pct,
            "crop_mode": crop_mode,
            "resample": resample,
            "do_center_crop": do_center_crop,
            "do_rescale": do_rescale,
            "rescale_factor": rescale_factor,
            "do_normalize": do_normalize,
            "image_mean": image_mean,
            "image_std": image_std,
        }
        settings = {key: getattr(self, key) if value is None else value for key, value in given.items()}
        ignored = sorted(set(kwargs) - {"do_convert_rgb", "device", "disable_grouping", "default_to_square"})
        if ignored:
            logger.warning_once(f"MambaVisionImageProcessor ignores the arguments {ignored}")
        self._check_settings(settings["crop_pct"], settings["crop_mode"], settings["image_mean"], settings["image_std"])
        channels_last = _format_name(data_format, "data_format") == "channels_last"
        input_data_format = _format_name(input_data_format, "input_data_format")

        prepared = [_prepare(image, input_data_format) for image in _split_batch(images)]
        resized = [self._resize_and_crop(image, settings) for image in prepared]
        shapes = {image.shape for image in resized}
        if len(shapes) > 1 and return_tensors is not None:
            raise ValueError(
                f"the processed images have different shapes {sorted(shapes)} and cannot form one tensor; "
                "keep do_resize and do_center_crop on, or pass images of one size"
            )
        # One size (the usual case): rescaled and normalised as one array in the output's layout, the same float32
        # operations as image by image without numpy's per-image calls and copies (a batch of 64 easy-VQA images:
        # one array written instead of 64 and their stack).
        if len(shapes) == 1:
            pixel_values = self._rescale_and_normalize(np.stack(resized), settings, channels_last)
        else:
            pixel_values = [self._rescale_and_normalize(image[None], settings, channels_last)[0] for image in resized]
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def _resize_and_crop(self, image: np.ndarray, settings: dict) -> np.ndarray:
        """(h, w, 3) uint8 or float32 → resized and cropped (h', w', 3), dtype kept."""
        size = settings["size"]
        if settings["do_resize"]:
            image = self.resize(image, size, settings["crop_pct"], settings["crop_mode"], settings["resample"])
        if settings["do_center_crop"]:
            image = _center_crop(image, size["height"], size["width"])
        if settings["do_rescale"] and image.dtype != np.uint8 and image.max() <= 1:
            logger.warning_once(
                "The images look already rescaled to [0, 1] (float pixels <= 1) and do_rescale=True multiplies them "
                "by rescale_factor again; pass do_rescale=False for such images."
            )
        return image

    @staticmethod
    def _rescale_and_normalize(images: np.ndarray, settings: dict, channels_last: bool) -> np.ndarray:
        """(b, h, w, 3) uint8 or float32 → rescaled, normalised float32, (b, h, w, 3) or (b, 3, h, w), contiguous."""
        if not channels_last:
            images = images.transpose(0, 3, 1, 2)
        images = images.astype(np.float32, order="C")  # a new array: the in-place steps below leave the input alone
        channel_shape = (3,) if channels_last else (3, 1, 1)
        if settings["do_rescale"]:
            images *= np.float32(settings["rescale_factor"])
        if settings["do_normalize"]:
            images -= np.asarray(settings["image_mean"], dtype=np.float32).reshape(channel_shape)
            images /= np.asarray(settings["image_std"], dtype=np.float32).reshape(channel_shape)
        return images


def read_mambavision_configs_in_auto_image_processor() -> None:
    """Lets `AutoImageProcessor.from_pretrained` (and so `AutoProcessor` and pipelines) read NVIDIA's MambaVision
    repositories, whose preprocessing lives in `config.json`. transformers' Auto lookup reads a
    `preprocessor_config.json` (or a timm `config.json`) and raises before asking any class (5.17–5.25,
    `models/auto/image_processing_auto.py`, "Load the image processor config"), and 5.25 builds the class it finds
    through `from_dict`, never through our `get_image_processor_dict`. The wrapper runs transformers' lookup first;
    only when it finds no processor file, and the folder's `config.json` is a MambaVision one, does it build our
    processor from that; otherwise transformers' own error stands. Idempotent."""
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    lookup = AutoImageProcessor.from_pretrained.__func__
    if getattr(lookup, "reads_mambavision_configs", False):
        return

    @functools.wraps(lookup)
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, **kwargs):
        try:
            return lookup(cls, pretrained_model_name_or_path, *inputs, **kwargs)
        except OSError as lookup_error:
            for auto_only in ("trust_remote_code", "use_fast", "backend"):  # our class is local, with one backend
                kwargs.pop(auto_only, None)
            try:
                return MambaVisionImageProcessor.from_pretrained(pretrained_model_name_or_path, *inputs, **kwargs)
            except OSError:
                raise lookup_error from None

    from_pretrained.reads_mambavision_configs = True
    AutoImageProcessor.from_pretrained = classmethod(from_pretrained)


__all__ = ["MambaVisionImageProcessor", "read_mambavision_configs_in_auto_image_processor"]
