"""Image processor for VLM-Mamba: resize (both sides, aspect ratio ignored) to the vision tower's `image_size`,
÷ 255, (x - mean) / std. NumPy/PIL only: no CPU build of torchvision installs beside a CPU torch, and a CUDA one
breaks transformers' imports.

It is `MambaVisionImageProcessor` with timm's "squash" resize at crop_pct 1 and no crop, so every image, whatever its
shape, becomes exactly the (3, image_size, image_size) that the tower's patch grid expects.
"""

from __future__ import annotations

from transformers.configuration_utils import PreTrainedConfig
from transformers.image_utils import PILImageResampling

from ..configuration.configuration_mambavision import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from ..configuration.configuration_vlm_mamba import VLMambaConfig
from .image_processing_mambavision import MambaVisionImageProcessor


class VLMambaImageProcessor(MambaVisionImageProcessor):
    r"""Resize to `size`, rescale, normalise; returns `BatchFeature({"pixel_values": (images, 3, h, w)})`, float32.

    Args:
        size (`dict` or `int`, defaults to 64): the tower's `image_size` (`VLMambaConfig.vision_config.image_size`).
        resample (`PILImageResampling`, defaults to BICUBIC): the resampling filter.
        do_rescale / rescale_factor: multiply by 1/255. do_normalize / image_mean / image_std: (x - mean) / std,
            ImageNet statistics by default.
        The other `MambaVisionImageProcessor` settings are fixed to a plain resize: crop_mode "squash", crop_pct 1,
        do_center_crop False.

    Accepts PIL images, numpy arrays (h, w), (h, w, c) or (c, h, w), torch tensors, lists of them (nested lists are
    flattened, one image per entry, in order) or 4-D batches; 16-bit images (PIL "I;16", numpy uint16) keep their
    range (÷ 257 to the 8-bit scale).
    """

    family_name = "vlm_mamba"  # the registry family whose remote-code bundle holds this class

    def __init__(
        self,
        do_resize: bool = True,
        size: dict[str, int] | int | None = None,
        crop_pct: float = 1.0,
        crop_mode: str = "squash",
        resample: PILImageResampling | int = PILImageResampling.BICUBIC,
        do_center_crop: bool = False,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: list[float] | tuple[float, ...] | None = None,
        image_std: list[float] | tuple[float, ...] | None = None,
        **kwargs,
    ):
        super().__init__(
            do_resize=do_resize,
            size=64 if size is None else size,
            crop_pct=crop_pct,
            crop_mode=crop_mode,
            resample=resample,
            do_center_crop=do_center_crop,
            do_rescale=do_rescale,
            rescale_factor=rescale_factor,
            do_normalize=do_normalize,
            image_mean=image_mean,
            image_std=image_std,
            **kwargs,
        )

    @classmethod
    def from_model_config(cls, config: VLMambaConfig | PreTrainedConfig | dict, **kwargs) -> VLMambaImageProcessor:
        """The processor for a `VLMambaConfig` (or its dict): the tower's image size; a MambaVision tower's own
        mean and std where its config has them, ImageNet's otherwise."""
        if isinstance(config, dict):
            config = VLMambaConfig(**{key: value for key, value in config.items() if key != "model_type"})
        vision = config.vision_config
        size = vision.image_size if isinstance(vision.image_size, int) else tuple(vision.image_size)
        settings = {
            "size": size,
            "image_mean": getattr(vision, "mean", None) or IMAGENET_DEFAULT_MEAN,
            "image_std": getattr(vision, "std", None) or IMAGENET_DEFAULT_STD,
        }
        return cls(**{**settings, **kwargs})


__all__ = ["VLMambaImageProcessor"]
