"""MambaVision (Hatamizadeh & Kautz, CVPR 2025, arXiv 2407.08083) as transformers models, on this package's SSM core.

Glossary: b batch, c channels, h/w height/width, ws window side, l tokens per window (ws²), d block width,
d_in mixer inner width (expand · d), d_half = d_in / 2 (width of each mixer branch), n state size, r dt rank, Δ step.

    pixels → stem (2 stride-2 convs) → stage 1 → ↓ → stage 2 → ↓ → stage 3 → ↓ → stage 4 → BatchNorm → pool → Linear
    stages 1-2: residual ConvBlocks on (b, c, h, w);  stages 3-4: windows of ws × ws tokens, the first ⌈depth/2⌉
    blocks with a Mamba mixer, the last ⌊depth/2⌋ with self-attention;  ↓: one stride-2 conv that doubles c.

State-dict keys are those of NVIDIA's Hub checkpoints (`model.patch_embed.*`, `model.levels.{i}.blocks.{j}.*`,
`model.levels.{i}.downsample.reduction.0.weight`, `model.norm.*`, `model.head.*`), so `nvidia/MambaVision-*` weights
load with no conversion, on CPU, without their remote code; keys without the `model.` prefix (the raw `.pth.tar`
layout) load too. The numerics are NVIDIA's (official mamba_vision.py), quirks included:
- the mixer's depthwise convs are non-causal ("same" padding) and have no bias (built with `bias=conv_bias // 2`);
- the z branch gets its own conv + SiLU and is concatenated to the scan output, not used as a gate;
- the dt bias is applied twice: `dt_proj(dt)` adds it, and the scan adds it again as `delta_bias`;
- stem BatchNorms use eps 1e-4; ConvBlocks use tanh-GELU, the MLPs exact GELU; the head norm is a BatchNorm2d;
- stages 3-4 zero-pad the map to window multiples with no mask: padded tokens take part in the scan and attention;
- drop path in stages 3-4 acts per window (the blocks see windows as the batch).
Departures (numerics unchanged): attention dropout is passed to SDPA only in training (NVIDIA passes it in eval too,
at rate 0); every projection and conv is called as a module, so LoRA adapters on any of them train.
"""

from __future__ import annotations

import math
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple

from ..configuration.configuration_mambavision import MambaVisionConfig
from ..hub_mixin import HubModelMixin
from .cache_utils import check_forward_kwargs
from .precision import float32_unless_native_bf16, scaled_dot_product_attention
from .ssm import project_tokens, selective_scan

try:  # transformers >= 5.2x; older 5.x releases keep it in utils
    from transformers.backbone_utils import BackboneMixin
except ImportError:  # pragma: no cover - depends on the installed transformers
    from transformers.utils.backbone_utils import BackboneMixin

logger = logging.get_logger(__name__)


# ------------------------------------------------------------------------------------------------ windows
def window_partition(hidden_states: torch.Tensor, window_size: int) -> torch.Tensor:
    """(b, c, h, w) → (b · windows, ws², c): windows in row-major order, tokens in raster order inside each window.

    h and w must be multiples of `window_size`.
    """
    batch, channels, height, width = hidden_states.shape
    windows = hidden_states.view(batch, channels, height // window_size, window_size, width // window_size, window_size)
    windows = windows.permute(0, 2, 4, 3, 5, 1)  # (b, h/ws, w/ws, ws, ws, c)
    return windows.reshape(-1, window_size * window_size, channels)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of `window_partition`: (b · windows, ws², c) → (b, c, h, w)."""
    channels = windows.shape[-1]
    hidden_states = windows.reshape(-1, height // window_size, width // window_size, window_size, window_size, channels)
    hidden_states = hidden_states.permute(0, 5, 1, 3, 2, 4)  # (b, c, h/ws, ws, w/ws, ws)
    return hidden_states.reshape(-1, channels, height, width)


# ------------------------------------------------------------------------------------------------- layers
class MambaVisionDropPath(nn.Module):
    """Stochastic depth per sample (row of the first axis); identity outside training or at rate 0."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1.0 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.dim() - 1)
        mask = hidden_states.new_empty(shape).bernoulli_(keep_prob)
        return hidden_states * mask / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


def _drop_path(rate: float) -> nn.Module:
    """NVIDIA uses nn.Identity for a zero rate: no module state either way."""
    return MambaVisionDropPath(rate) if rate > 0.0 else nn.Identity()


class MambaVisionPatchEmbeddings(nn.Module):
    """Stem (NVIDIA's `PatchEmbed`): two 3×3 stride-2 convs without bias, each followed by BatchNorm (eps 1e-4) and
    ReLU. (b, 3, h, w) → (b, dim, ⌈h/4⌉, ⌈w/4⌉)."""

    def __init__(self, config: MambaVisionConfig):
        super().__init__()
        self.proj = nn.Identity()  # parameter-free, kept for NVIDIA's module layout
        self.conv_down = nn.Sequential(
            nn.Conv2d(config.num_channels, config.in_dim, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(config.in_dim, eps=1e-4),
            nn.ReLU(),
            nn.Conv2d(config.in_dim, config.dim, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(config.dim, eps=1e-4),
            nn.ReLU(),
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.conv_down(self.proj(pixel_values))


class MambaVisionDownsample(nn.Module):
    """Between stages: one 3×3 stride-2 conv, no bias and no norm. (b, d, h, w) → (b, 2d, ⌈h/2⌉, ⌈w/2⌉)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, stride=2, padding=1, bias=False))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.reduction(hidden_states)


class MambaVisionConvBlock(GradientCheckpointingLayer):
    """Stages 1-2: x + drop_path(γ · BN(conv(GELU_tanh(BN(conv(x)))))), 3×3 convs with bias; γ only if
    `layer_scale_conv` is a number (no released variant has it)."""

    def __init__(self, config: MambaVisionConfig, dim: int, drop_path: float):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, stride=1, padding=1)
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5)
        self.act1 = nn.GELU(approximate="tanh")
        self.conv2 = nn.Conv2d(dim, dim, 3, stride=1, padding=1)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5)
        scale = config.layer_scale_conv
        self.gamma = nn.Parameter(scale * torch.ones(dim)) if scale is not None else None
        self.drop_path = _drop_path(drop_path)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.act1(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.norm2(self.conv2(hidden_states))
        if self.gamma is not None:
            hidden_states = hidden_states * self.gamma.view(1, -1, 1, 1)
        return residual + self.drop_path(hidden_states)


class MambaVisionMixer(nn.Module):
    """NVIDIA's Mamba mixer for vision: two branches of width d_half, one through the selective scan, one not,
    concatenated. (b, l, d) → (b, l, d).

    1. in_proj splits into x and z (no bias);  2. each branch: non-causal depthwise conv (no bias) + SiLU;
    3. x_proj(x) → dt, B, C;  dt_proj(dt) adds the dt bias once;  4. selective scan with `delta_bias` = the same
    bias again, softplus, D skip, no gate;  5. out_proj(cat[y, z]).
    """

    def __init__(self, config: MambaVisionConfig, dim: int):
        super().__init__()
        self.config = config
        self.d_inner = config.expand * dim
        self.d_half = self.d_inner // 2
        self.state_size = config.state_size
        self.time_step_rank = math.ceil(dim / 16)  # NVIDIA's dt_rank="auto" on the block width
        self.in_proj = nn.Linear(dim, self.d_inner, bias=False)
        self.x_proj = nn.Linear(self.d_half, self.time_step_rank + 2 * self.state_size, bias=False)
        self.dt_proj = nn.Linear(self.time_step_rank, self.d_half, bias=True)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)
        conv = {"kernel_size": config.conv_kernel, "groups": self.d_half, "padding": "same", "bias": False}
        self.conv1d_x = nn.Conv1d(self.d_half, self.d_half, **conv)
        self.conv1d_z = nn.Conv1d(self.d_half, self.d_half, **conv)
        A = torch.arange(1, self.state_size + 1, dtype=torch.float32).repeat(self.d_half, 1)
        self.A_log = nn.Parameter(torch.log(A))  # S4D-real: A = -(1..n) per channel
        self.D = nn.Parameter(torch.ones(self.d_half))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # 1. Input projection, split into the scanned branch x and the plain branch z.
        xz = self.in_proj(hidden_states).transpose(1, 2)  #                           (b, d_in, l)
        x, z = xz.chunk(2, dim=1)  #                                                 (b, d_half, l) each
        # 2. Non-causal depthwise convs without bias (NVIDIA: padding "same", bias=conv_bias // 2 == 0), SiLU.
        x = F.silu(self.conv1d_x(x))
        z = F.silu(self.conv1d_z(z))
        # 3. Input-dependent Δ, B, C. The module call adds the dt bias once ...
        x_dbl = project_tokens(self.x_proj, x)  #                                   (b, l, r + 2n)
        dt, B, C = torch.split(x_dbl, [self.time_step_rank, self.state_size, self.state_size], dim=-1)
        dt = self.dt_proj(dt).transpose(1, 2)  #                                     (b, d_half, l)
        # 4. ... and the scan adds it again (`delta_bias`), as NVIDIA's trained weights expect.
        y = selective_scan(
            x.contiguous(),
            dt.contiguous(),
            -torch.exp(self.A_log.float()),  #                                       (d_half, n)
            B.transpose(1, 2).contiguous(),  #                                       (b, n, l)
            C.transpose(1, 2).contiguous(),  #                                       (b, n, l)
            self.D.float(),
            z=None,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            backend=self.config.scan_backend,
        )  #                                                                         (b, d_half, l)
        # 5. Concatenate (not gate) with the z branch and project back.
        return project_tokens(self.out_proj, torch.cat([y, z], dim=1))  #            (b, l, d)


class MambaVisionAttention(nn.Module):
    """Multi-head self-attention inside a window: no positional embedding, no relative bias, no mask."""

    def __init__(self, config: MambaVisionConfig, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = config.attn_drop_rate
        self.qkv = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(config.drop_rate)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  #                  (b, heads, l, head_dim) each
        dropout = self.attn_drop if self.training else 0.0
        attended = scaled_dot_product_attention(query, key, value, dropout_p=dropout)  # float32 where faster
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        return self.proj_drop(self.proj(attended))


class MambaVisionMlp(nn.Module):
    """fc1 → exact GELU → dropout → fc2 → dropout (timm's Mlp)."""

    def __init__(self, config: MambaVisionConfig, dim: int):
        super().__init__()
        hidden = int(dim * config.mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(config.drop_rate)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(config.drop_rate)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(hidden_states)))))


class MambaVisionBlock(GradientCheckpointingLayer):
    """Stages 3-4, pre-norm: x + drop_path(γ₁ · mixer(LN(x))), then x + drop_path(γ₂ · mlp(LN(x))).

    The mixer is a `MambaVisionMixer` or, for the last ⌊depth/2⌋ blocks of a stage, `MambaVisionAttention`;
    γ₁, γ₂ exist only when `config.layer_scale` is a number. (b · windows, l, d) → same.
    """

    def __init__(self, config: MambaVisionConfig, dim: int, num_heads: int, drop_path: float, attention: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        if attention:
            self.mixer = MambaVisionAttention(config, dim, num_heads)
        else:
            self.mixer = MambaVisionMixer(config, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MambaVisionMlp(config, dim)
        scale = config.layer_scale
        self.gamma_1 = nn.Parameter(scale * torch.ones(dim)) if scale is not None else None
        self.gamma_2 = nn.Parameter(scale * torch.ones(dim)) if scale is not None else None
        self.drop_path = _drop_path(drop_path)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        update = self.mixer(self.norm1(hidden_states))
        if self.gamma_1 is not None:
            update = self.gamma_1 * update
        hidden_states = hidden_states + self.drop_path(update)
        update = self.mlp(self.norm2(hidden_states))
        if self.gamma_2 is not None:
            update = self.gamma_2 * update
        return hidden_states + self.drop_path(update)


def is_attention_block(index: int, depth: int) -> bool:
    """NVIDIA's mix rule: the first ⌈depth/2⌉ blocks of stages 3-4 are Mamba mixers, the rest attention."""
    return index >= (depth + 1) // 2


class MambaVisionLevel(nn.Module):
    """One stage (NVIDIA's `MambaVisionLayer`): its blocks, then the downsampling conv (stages 1-3).

    Returns the pre-downsample map (the stage's feature map) and the input of the next stage.
    """

    def __init__(self, config: MambaVisionConfig, stage: int, drop_paths: list[float]):
        super().__init__()
        dim, depth = config.hidden_sizes[stage], config.depths[stage]
        self.is_conv = stage < 2
        self.window_size = config.window_size[stage]
        if self.is_conv:
            blocks = [MambaVisionConvBlock(config, dim, drop_paths[index]) for index in range(depth)]
        else:
            heads = config.num_heads[stage]
            blocks = [
                MambaVisionBlock(config, dim, heads, drop_paths[index], attention=is_attention_block(index, depth))
                for index in range(depth)
            ]
        self.blocks = nn.ModuleList(blocks)
        self.downsample = MambaVisionDownsample(dim) if stage < 3 else None

    def _windowed(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Runs the blocks on ws × ws windows of the map, zero-padded on the right and bottom to window multiples."""
        window = self.window_size
        height, width = hidden_states.shape[-2:]
        pad_bottom, pad_right = (window - height % window) % window, (window - width % window) % window
        if pad_bottom or pad_right:
            hidden_states = F.pad(hidden_states, (0, pad_right, 0, pad_bottom))
        windows = window_partition(hidden_states, window)  #                         (b · windows, ws², c)
        for block in self.blocks:
            windows = block(windows)
        hidden_states = window_reverse(windows, window, height + pad_bottom, width + pad_right)
        if pad_bottom or pad_right:
            hidden_states = hidden_states[:, :, :height, :width].contiguous()
        return hidden_states

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_conv:
            for block in self.blocks:
                hidden_states = block(hidden_states)
        else:
            hidden_states = self._windowed(hidden_states)
        downsampled = self.downsample(hidden_states) if self.downsample is not None else hidden_states
        return hidden_states, downsampled


class MambaVisionNetwork(nn.Module):
    """NVIDIA's `MambaVision` module tree: `patch_embed`, `levels`, `norm` (BatchNorm2d) and `head` — the part of the
    Hub checkpoints under `model.`. `norm` is left out for the backbone, `head` exists only for classification."""

    def __init__(self, config: MambaVisionConfig, with_norm: bool = True, num_labels: int | None = None):
        super().__init__()
        total = sum(config.depths)
        rates = torch.linspace(0, config.drop_path_rate, total, device="cpu").tolist()  # CPU: models build on meta
        starts = [sum(config.depths[:stage]) for stage in range(len(config.depths))]
        self.patch_embed = MambaVisionPatchEmbeddings(config)
        self.levels = nn.ModuleList(
            MambaVisionLevel(config, stage, rates[start : start + depth])
            for stage, (start, depth) in enumerate(zip(starts, config.depths, strict=True))
        )
        self.norm = nn.BatchNorm2d(config.num_features) if with_norm else None
        if num_labels is not None:
            self.head = nn.Linear(config.num_features, num_labels) if num_labels > 0 else nn.Identity()

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Returns the last map (after `norm` if present) and the stem map + the 4 pre-downsample stage maps."""
        hidden_states = self.patch_embed(pixel_values)  #                            (b, dim, h/4, w/4)
        maps = [hidden_states]
        for level in self.levels:
            features, hidden_states = level(hidden_states)
            maps.append(features)  #                                                 (b, dim·2^i, h/2^(i+2), w/2^(i+2))
        last = self.norm(hidden_states) if self.norm is not None else hidden_states
        return last, tuple(maps)


# ------------------------------------------------------------------------------------------------- models
class MambaVisionPreTrainedModel(HubModelMixin, PreTrainedModel):
    config: MambaVisionConfig
    config_class = MambaVisionConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["MambaVisionConvBlock", "MambaVisionBlock"]
    # NVIDIA's safetensors may omit BatchNorm's step counters; it is training bookkeeping only.
    _keys_to_ignore_on_load_missing = [r"num_batches_tracked"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """NVIDIA's init: Linear trunc-normal(0.02) with zero bias — which, as upstream, also overwrites the
        Mamba-style dt_proj init (bias 0); norms 1/0; convs keep PyTorch's default; A_log = log(1..n), D = 1;
        layer scales = the configured value. The `init` helpers skip weights loaded from a checkpoint."""
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight[0].numel())
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            super()._init_weights(module)
        elif isinstance(module, MambaVisionMixer):
            A = torch.arange(1, module.state_size + 1, dtype=torch.float32, device=module.A_log.device)
            init.copy_(module.A_log, torch.log(A).repeat(module.d_half, 1))
            init.ones_(module.D)
        elif isinstance(module, MambaVisionBlock) and module.gamma_1 is not None:
            init.constant_(module.gamma_1, self.config.layer_scale)
            init.constant_(module.gamma_2, self.config.layer_scale)
        elif isinstance(module, MambaVisionConvBlock) and module.gamma is not None:
            init.constant_(module.gamma, self.config.layer_scale_conv)

    def _check_pixel_values(self, pixel_values: torch.Tensor | None) -> None:
        """Raises a clear error for inputs the network cannot take."""
        if pixel_values is None:
            raise ValueError("You have to specify pixel_values")
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
        shape = tuple(pixel_values.shape)
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be 4-D (batch, channels, height, width), got shape {shape}")
        channels = self.config.num_channels
        if shape[1] != channels:
            hint = "; channels-last input? use pixel_values.permute(0, 3, 1, 2)" if shape[3] == channels else ""
            raise ValueError(
                f"pixel_values must have config.num_channels = {channels} channels in dimension 1 "
                f"(batch, channels, height, width), got shape {shape}{hint}"
            )
        if 0 in shape:
            raise ValueError(f"pixel_values is empty (a batch of 0 or an image with 0 pixels), got shape {shape}")
        if not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a floating-point tensor (normalised images), got {pixel_values.dtype}; "
                "MambaVisionImageProcessor turns images into pixel_values"
            )

    def _network_forward(self, pixel_values: torch.Tensor | None, output_hidden_states: bool | None, kwargs: dict):
        """The checks of every forward here (its keywords, pixel_values), then the network: (the stage-4 map, the stem
        and stage maps, those maps when hidden states are asked for (`output_hidden_states`, else the config's) or
        None)."""
        check_forward_kwargs(self, kwargs)
        self._check_pixel_values(pixel_values)
        last_hidden_state, maps = self.model(pixel_values.to(self.dtype))  # float64 images too, as ViT's embeddings
        wanted = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return last_hidden_state, maps, maps if wanted else None


class MambaVisionModel(MambaVisionPreTrainedModel):
    """The MambaVision network without its classification head.

    `last_hidden_state` is the stage-4 map after the final BatchNorm (b, 8·dim, h/32, w/32), `pooler_output` its
    average (b, 8·dim) — NVIDIA's `forward_features`. With `output_hidden_states`, `hidden_states` holds the stem map
    and the four pre-downsample stage maps (transformers' convention, `hidden_states[1:]` are NVIDIA's four "outs":
    for T at 224, 80×56×56, 160×28×28, 320×14×14, 640×7×7).
    """

    # NVIDIA's AutoModel checkpoints carry the 1000-class head too.
    _keys_to_ignore_on_load_unexpected = [r"^(model\.)?head\."]

    def __init__(self, config: MambaVisionConfig):
        super().__init__(config)
        self.model = MambaVisionNetwork(config)
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        last_hidden_state, _, hidden_states = self._network_forward(pixel_values, output_hidden_states, kwargs)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last_hidden_state,
            pooler_output=last_hidden_state.mean(dim=(-2, -1)),
            hidden_states=hidden_states,
        )


class MambaVisionForImageClassification(MambaVisionPreTrainedModel):
    """MambaVision with its head: pooled features → Linear(8·dim, num_labels) (`model.head`, NVIDIA's key).

    `labels` give a loss chosen by `config.problem_type` as in transformers: regression (num_labels = 1, MSE),
    single-label (integer labels, cross-entropy) or multi-label (float labels, BCE with logits).
    """

    accepts_loss_kwargs = False

    def __init__(self, config: MambaVisionConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = MambaVisionNetwork(config, num_labels=config.num_labels)
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutputWithNoAttention:
        last_hidden_state, _, hidden_states = self._network_forward(pixel_values, output_hidden_states, kwargs)
        logits = self.model.head(last_hidden_state.mean(dim=(-2, -1)))
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=hidden_states)


class MambaVisionBackbone(BackboneMixin, MambaVisionPreTrainedModel):
    """Multi-scale features for detection / segmentation heads (transformers' `AutoBackbone` API).

    Stages are `["stem", "stage1", "stage2", "stage3", "stage4"]`; `feature_maps` holds the pre-downsample maps of
    `config.out_features` (or `out_indices`), as NVIDIA's Hub model returns them, with no extra norm.
    """

    has_attentions = False
    _keys_to_ignore_on_load_unexpected = [r"^(model\.)?(norm|head)\."]

    def __init__(self, config: MambaVisionConfig):
        super().__init__(config)
        self.model = MambaVisionNetwork(config, with_norm=False)
        self.num_features = [config.dim, *config.hidden_sizes]
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BackboneOutput:
        _, maps, hidden_states = self._network_forward(pixel_values, output_hidden_states, kwargs)
        named = zip(self.stage_names, maps, strict=True)
        feature_maps = tuple(hidden for name, hidden in named if name in self.out_features)
        return BackboneOutput(feature_maps=feature_maps, hidden_states=hidden_states)


__all__ = [
    "MambaVisionBackbone",
    "MambaVisionForImageClassification",
    "MambaVisionModel",
    "MambaVisionPreTrainedModel",
]
