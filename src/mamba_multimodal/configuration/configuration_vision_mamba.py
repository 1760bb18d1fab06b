"""VisionMamba configuration: the attention-free image encoder of bidirectional Mamba blocks over image patches (Vim,
Zhu et al., arXiv 2401.09417), VLM-Mamba's default vision tower and a model of its own (`VisionMambaModel`).
"""

from typing import Literal

from transformers.configuration_utils import PreTrainedConfig

from .configuration_mamba import MambaConfig
from .validation import Number, ScanConfig, check_positive_ints, check_positive_numbers, strict_config


class PatchGeometry(PreTrainedConfig):
    """image_size, patch_size and num_channels of a tower that cuts the image into square patches."""

    image_size: int = 64
    patch_size: int = 8
    num_channels: int = 3

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def validate_geometry(self):
        check_positive_ints(self, "image_size", "patch_size", "num_channels")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size}): "
                "the patches tile the image"
            )


@strict_config
class VisionMambaConfig(ScanConfig, PatchGeometry):
    r"""The attention-free vision encoder: patch embedding (`stem`) + learned position embedding +
    `num_hidden_layers` pre-norm residual Mamba blocks over the patches in raster order + a final RMSNorm. With
    `bidirectional`, every block also scans the patches in reverse and adds that output (Vim, arXiv 2401.09417), so
    every patch sees the whole image. Mamba fields as transformers' `MambaConfig`.

    Args:
        image_size (`int`): side of the square input image (default 64).
        patch_size (`int`): side of a square patch (default 8).
        num_channels (`int`): image channels (default 3).
        stem (`str`): how patches become tokens: "patchify" (default, ViT / Vim: one conv with kernel = stride =
            patch_size) or "conv" (a convolutional stem: log2(patch_size) 3×3 stride-2 convs with GELU between,
            widths doubling up to hidden_size, as "Early Convolutions Help Transformers See Better", arXiv
            2106.14881; patch_size must be a power of 2). The conv stem sees edges and corners across patch
            borders: it learns shapes much faster (`bench/bench_vlm_learning.py`).
        hidden_size (`int`): width d of the patch tokens (default 64).
        num_hidden_layers (`int`): Mamba blocks (default 2).
        state_size, conv_kernel, expand (`int`): Mamba's n, conv width and d_in / d (default 16, 4, 2).
        bidirectional (`bool`): also scan the patches in reverse (default True).
        layer_norm_epsilon (`float`): RMSNorm epsilon (default 1e-5).
        scan_backend (`str`): selective-scan path of the blocks (see `validation.ScanConfig`).
    """

    model_type = "vision_mamba"

    stem: Literal["patchify", "conv"] = "patchify"
    hidden_size: int = 64
    num_hidden_layers: int = 2
    state_size: int = 16
    conv_kernel: int = 4
    expand: int = 2
    bidirectional: bool = True
    layer_norm_epsilon: Number = 1e-5

    @property
    def stem_widths(self) -> list[int]:
        """Output channels of the conv stem's convolutions, doubling up to hidden_size (at least 8 each)."""
        depth = self.patch_size.bit_length() - 1
        return [max(8, self.hidden_size >> (depth - 1 - i)) for i in range(depth - 1)] + [self.hidden_size]

    def mamba_config(self) -> MambaConfig:
        """The blocks' settings as the `MambaConfig` that `modeling/mamba.py`'s blocks take."""
        return MambaConfig(
            hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers, state_size=self.state_size,
            conv_kernel=self.conv_kernel, expand=self.expand, layer_norm_epsilon=self.layer_norm_epsilon,
            vocab_size=1, use_mambapy=False, scan_backend=self.scan_backend,
        )  # fmt: skip

    def validate_blocks(self):
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(f"stem='conv' halves the image log2(patch_size) times: patch_size must be a power of 2 "
                             f"and at least 2, got {self.patch_size}")  # fmt: skip
        check_positive_ints(self, "hidden_size", "num_hidden_layers", "state_size", "conv_kernel", "expand")
        check_positive_numbers(self, "layer_norm_epsilon")


__all__ = ["PatchGeometry", "VisionMambaConfig"]
