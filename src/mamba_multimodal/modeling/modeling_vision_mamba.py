"""VisionMamba (Vim, Zhu et al., arXiv 2401.09417): an attention-free image encoder, VLM-Mamba's default vision tower.

    pixel_values (b, C, H, W) → patch embedding (b, P, d_v) + position embedding → N layers → RMSNorm
    layer: x + mixer(norm(x)) [+ flip(mixer_backward(flip(norm(x))))], the mixers Mamba's (`mamba.py`)

The patches run in raster order; with `bidirectional`, every layer also scans them in reverse, so every patch sees the
whole image. Glossary: b batch, P patches per image ((image_size / patch_size)²), d_v hidden size.
"""

from __future__ import annotations

import itertools
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

from ..configuration.configuration_vision_mamba import VisionMambaConfig
from ..hub_mixin import HubModelMixin
from .cache_utils import check_forward_kwargs
from .mamba import MambaMixer, MambaRMSNorm, init_mamba_mixer
from .precision import float32_unless_native_bf16


def _check_pixel_values(pixel_values, num_channels: int, image_size: int) -> None:
    if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
        kind = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise TypeError(f"pixel_values must be a floating-point torch.Tensor (images, channels, h, w), got {kind}")
    expected = (num_channels, image_size, image_size)
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
        got = tuple(pixel_values.shape)
        size_only = pixel_values.dim() == 4 and got[1] == num_channels  # the one mistake of a resized image
        hint = ""
        if size_only:
            hint = (f": the images are {got[2]}×{got[3]}, the tower takes {image_size}×{image_size} (its config's "
                    "image_size); resize them, as the model's image processor does")  # fmt: skip
        raise ValueError(f"pixel_values must have shape (images, {', '.join(map(str, expected))}), got {got}{hint}")


class VisionMambaMixer(MambaMixer):
    """Mamba's mixer, sized by `config.mamba_config()` but keeping the VisionMambaConfig itself as `config`: the scan
    reads `config.scan_backend` when it runs, so a backend set after the model is built reaches it (as "pytorch",
    which `export.export_onnx` sets on the model's config while it traces)."""

    def __init__(self, config: VisionMambaConfig, layer_idx: int):
        super().__init__(config.mamba_config(), layer_idx)
        self.config = config


class VisionMambaLayer(GradientCheckpointingLayer):
    """Pre-norm residual block over the patch sequence: x + mixer(norm(x)) [+ flip(mixer_backward(flip(norm(x))))]."""

    def __init__(self, config: VisionMambaConfig, layer_idx: int):
        super().__init__()
        self.norm = MambaRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = VisionMambaMixer(config, layer_idx)
        self.mixer_backward = VisionMambaMixer(config, layer_idx) if config.bidirectional else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states: (b, P, d_v) → (b, P, d_v)."""
        normed = self.norm(hidden_states)
        out = hidden_states + self.mixer(normed)
        if self.mixer_backward is not None:  # the same scan over the patches in reverse raster order
            out = out + self.mixer_backward(normed.flip(1)).flip(1)
        return out


class VisionMambaStemConv(nn.Conv2d):
    """A 3×3 stride-2 conv of the conv stem (its own class so that `_init_weights` gives it He init)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=3, stride=2, padding=1)


class VisionMambaConvStem(nn.Module):
    """(b, C, H, W) → (b, d_v, H / patch, W / patch) by log2(patch) 3×3 stride-2 convs, GELU between them.

    Unlike one patchify conv, neighbouring patches share pixels through the overlapping kernels, so an edge that
    crosses a patch border is seen whole (arXiv 2106.14881). No normalisation: nothing to keep in running statistics.
    """

    def __init__(self, config: VisionMambaConfig):
        super().__init__()
        widths = [config.num_channels, *config.stem_widths]
        self.convs = nn.ModuleList(VisionMambaStemConv(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = pixel_values
        for i, conv in enumerate(self.convs):
            hidden = conv(hidden if i == 0 else F.gelu(hidden))
        return hidden


def _patch_embeddings(config: VisionMambaConfig) -> nn.Module:
    if config.stem == "conv":
        return VisionMambaConvStem(config)
    return nn.Conv2d(config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size)


class VisionMambaPreTrainedModel(HubModelMixin, PreTrainedModel):
    config: VisionMambaConfig
    config_class = VisionMambaConfig
    base_model_prefix = "vision_mamba"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["VisionMambaLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, VisionMambaStemConv):
            # He init keeps the activations' scale through the stem, which has no norm; the default std 0.02 would
            # shrink them about 5x per conv.
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)
            return
        super()._init_weights(module)
        if isinstance(module, VisionMambaMixer):
            init_mamba_mixer(module, module.config.mamba_config())  # Mamba's time-step settings, with their defaults
        elif isinstance(module, VisionMambaModel):
            init.normal_(module.position_embeddings, std=0.02)  # transformers' helper: skips loaded weights


class VisionMambaModel(VisionMambaPreTrainedModel):
    """Patch embedding (b, 3, H, W) → (b, P, d_v) + position embedding → Mamba blocks → RMSNorm.

    `last_hidden_state` (b, P, d_v) is normed; `pooler_output` its mean over patches; with `output_hidden_states`,
    `hidden_states` holds the embeddings, then every block's output, the last one normed.
    """

    def __init__(self, config: VisionMambaConfig):
        super().__init__(config)
        self.patch_embeddings = _patch_embeddings(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_patches, config.hidden_size))
        self.layers = nn.ModuleList([VisionMambaLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = MambaRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        check_forward_kwargs(self, kwargs)
        _check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        dtype = self.position_embeddings.dtype
        patches = self.patch_embeddings(pixel_values.to(dtype))  #                                   (b, d_v, h, w)
        hidden = patches.flatten(2).transpose(1, 2) + self.position_embeddings  #                       (b, P, d_v)
        all_hidden = [hidden]
        for layer in self.layers:
            hidden = layer(hidden)
            all_hidden.append(hidden)
        hidden = self.norm(hidden)
        all_hidden[-1] = hidden
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden,
            pooler_output=hidden.mean(1),
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
        )


__all__ = ["VisionMambaModel", "VisionMambaPreTrainedModel"]
