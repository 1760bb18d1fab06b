"""Coupled Mamba (Li et al., NeurIPS 2024, arXiv 2405.18014) as transformers models, on this package's SSM core.

Glossary: M modalities, b batch, l time steps (one axis shared by every modality), D_m feature size of modality m,
d hidden size, d_in mixer inner width (expand · d), n state size, r dt rank, k conv kernel, Δ step, c coupled state.

    {m}_features → input projection → N coupled layers → LayerNorm → pooling per modality → fusion → head
    coupled layer: one Mamba block per modality (LayerNorm → in_proj → causal conv → x_proj / dt_proj: Δ, B, C), then
    ONE coupled scan over every modality (`ssm_coupled.coupled_scan`, Eq. 6 of the paper):
        h^m_t = exp(Δ^m_t A^m) ⊙ c_{t-1} + Δ^m_t B^m_t x^m_t      y^m_t = C^m_t · h^m_t + D^m x^m_t
        c_t = Σ_m h^m_t ("sum") | (1/M) Σ_m h^m_t ("mean") | c^m_t = h^m_t ("none")
    then y^m ⊙ silu(z^m) → out_proj → + residual, per modality.

The readout is per modality, y^m = C^m · h^m, as Algorithm 1 and Eq. 5 imply (arXiv 2405.18014; its Eq. 8 reads
the summed state, C ⊗ Σ_m h^m, instead). Parameter names are Mamba's (`in_proj`, `conv1d`, `x_proj`, `dt_proj`,
`A_log`, `D`, `out_proj`), every projection is called as a module (LoRA adapters on any of them train), and the scan
is never written here: training runs the parallel `coupled_scan`, streaming `coupled_state_update`.

Padding: `{m}_attention_mask` (b, l) marks modality m's real steps with 1.
- A step at which EVERY modality is padded does not exist for the model: it changes no state, and the outputs at the
  real steps, the pooled features and the cache are the same as without it, wherever it sits (left, right or inside).
  The parallel pass moves such steps to the front of the sequence, where every state is still zero and stays zero
  (x = 0 and Δ = 0 there); streaming leaves the cache untouched on them.
- A step at which only SOME modalities are padded is an observation missing from those modalities: their input x
  and their step Δ are zeroed, so S^m_t = exp(0 · A) = 1 and their drive is 0: the padded modality hands the coupled
  state on unchanged, h^m_t = c_{t-1}, and adds nothing. Per coupling: "none" keeps that modality's state as it was;
  "mean" gives c_t = (Σ_{present} h^m_t + (number absent) · c_{t-1}) / M; "sum" gives Σ_{present} h^m_t + (number
  absent) · c_{t-1}. Its conv window takes a zero input.
- A padded modality's block outputs zero at that step (its residual stream passes through), and pooling skips it.
Values of `last_hidden_state` at padded steps carry no meaning.

Long and live sequences: `use_cache=True` (or a `CoupledMambaCache`) returns a cache that a later call continues from,
with the outputs of one parallel pass over everything; without autograd, long inputs go through in pieces of
`config.inference_chunk_tokens` tokens (`streaming_coupled_mamba.py`). Pooling and fusion: `pooling_coupled_mamba.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ModelOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple

from ..configuration.configuration_coupled_mamba import CoupledMambaConfig
from ..hub_mixin import HubModelMixin
from .cache_utils import LegacyCacheOutputMixin, check_forward_kwargs, legacy_cache_names
from .mamba import MambaMixerParameters, init_mamba_mixer
from .pooling_coupled_mamba import fuse
from .precision import float32_unless_native_bf16
from .ssm import _is_tracing, causal_conv1d_update, project_tokens
from .ssm_coupled import coupled_scan, coupled_state_update
from .streaming_coupled_mamba import (
    CoupledMambaCache,
    forward_parallel,
    forward_steps,
    padding_order,
    pooled_modalities,
    prepare_cache,
)

logger = logging.get_logger(__name__)


_MODALITY_SUFFIXES = ("_features", "_attention_mask")


# ------------------------------------------------------------------------------------------------- masks
def _zero_padded(tensor: torch.Tensor, mask: torch.Tensor | None, time_dim: int | None) -> torch.Tensor:
    """Zeroes the padded steps of `tensor`; mask: (b, l) bool (or (b,) for one step, time_dim None)."""
    if mask is None:
        return tensor
    shape = [mask.shape[0]] + [1] * (tensor.dim() - 1)
    if time_dim is not None:
        shape[time_dim] = mask.shape[1]
    return tensor.masked_fill(~mask.reshape(shape), 0.0)


def _modality_inputs(model: nn.Module, kwargs: dict) -> dict:
    """The modality inputs (`{m}_features`, `{m}_attention_mask`) among a forward's extra keywords; the others follow
    `cache_utils.check_forward_kwargs` (a typo raises instead of vanishing)."""
    check_forward_kwargs(model, {k: v for k, v in kwargs.items() if not k.endswith(_MODALITY_SUFFIXES)})
    return {k: v for k, v in kwargs.items() if k.endswith(_MODALITY_SUFFIXES)}


def _last_steps(tensor: torch.Tensor, count: int) -> torch.Tensor:
    """The last `count` steps of tensor (..., l), zero-padded on the left when l < count."""
    length = tensor.shape[-1]
    return F.pad(tensor, (max(0, count - length), 0))[..., max(0, length - count) :]


# ------------------------------------------------------------------------------------------------ layers
class ScanInputs(NamedTuple):
    """One modality's inputs to the coupled scan. Parallel: x, gate, delta (b, d_in, l); B, C (b, l, n); window
    (b, d_in, k-1) the conv's last inputs. One step: x, gate, delta (b, d_in); B, C (b, n); window None."""

    x: torch.Tensor
    gate: torch.Tensor
    delta: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    window: torch.Tensor | None


class CoupledMambaInputProjection(nn.Module):
    """One modality's features (b, l, D_m) → its stream (b, l, d): Linear, then LayerNorm (features such as COVAREP
    come on very different scales)."""

    def __init__(self, config: CoupledMambaConfig, input_size: int):
        super().__init__()
        self.projection = nn.Linear(input_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.projection(features.to(self.projection.weight.dtype)))


class CoupledMambaMixer(MambaMixerParameters):
    """One modality's Mamba mixer (Mamba's parameters and names), split around the scan that the layer runs for
    every modality at once: `scan_inputs` (in_proj → causal conv → x_proj / dt_proj) before it, `output` (out_proj)
    after it."""

    def scan_inputs(
        self, hidden_states: torch.Tensor, mask: torch.Tensor | None, window: torch.Tensor | None = None
    ) -> ScanInputs:
        """hidden_states: (b, l, d), normalised; mask: (b, l) bool or None; window: (b, d_in, k-1) the conv inputs
        of the k-1 steps before (a cache's), or None for zeros. Padded steps get x = 0 and Δ = 0."""
        length, history = hidden_states.shape[1], self.conv_kernel_size - 1
        # 1. Input projection to the SSM branch x and the gate z.
        x, gate = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  #            (b, d_in, l) each
        x = _zero_padded(x, mask, time_dim=2)
        if window is not None:
            x = torch.cat([window.to(x.dtype), x], dim=-1)  #                                    (b, d_in, k-1+l)
        # 2. Causal depthwise conv: nn.Conv1d pads k-1 on both sides; output j sees inputs j-k+1..j, so the
        # outputs of the l new steps are the l that follow the window.
        start = 0 if window is None else history
        convolved = self.conv1d(x)[..., start : start + length]
        window = _last_steps(x, history)  #                              the conv's last inputs, for a cache
        x = _zero_padded(F.silu(convolved), mask, time_dim=2)
        # 3. Input-dependent step Δ and projections B, C.
        delta, B, C = self._selective_parameters(x.transpose(1, 2), mask, time_dim=1)
        return ScanInputs(x, gate, delta.transpose(1, 2), B, C, window)

    def scan_inputs_step(self, hidden_states: torch.Tensor, mask: torch.Tensor | None, conv_state) -> ScanInputs:
        """One step: hidden_states (b, d), mask (b,) bool or None; conv_state (b, d_in, k-1) is updated in place."""
        x, gate = self.in_proj(hidden_states).chunk(2, dim=-1)  #                                 (b, d_in) each
        x = _zero_padded(x, mask, time_dim=None)
        weight = self.conv1d.weight.squeeze(1)  #                                                      (d_in, k)
        x = causal_conv1d_update(x, conv_state, weight, self.conv1d.bias, activation=self.activation)
        x = _zero_padded(x, mask, time_dim=None)
        delta, B, C = self._selective_parameters(x, mask, time_dim=None)
        return ScanInputs(x, gate, delta, B, C, None)

    def _selective_parameters(self, x: torch.Tensor, mask: torch.Tensor | None, time_dim: int | None):
        """x (..., d_in) → Δ (..., d_in) in float32 (softplus, zero at padded steps), B, C (..., n)."""
        time_step, B, C = self.x_proj(x).split([self.time_step_rank, self.ssm_state_size, self.ssm_state_size], -1)
        delta = F.softplus(self.dt_proj(time_step).float())
        return _zero_padded(delta, mask, time_dim), B, C

    def output(self, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """y: (b, d_in, l) → (b, l, d), or (b, d_in) → (b, d) for one step; zero at padded steps."""
        if y.dim() == 3:
            return _zero_padded(project_tokens(self.out_proj, y), mask, time_dim=1)
        return _zero_padded(self.out_proj(y), mask, time_dim=None)


class CoupledMambaBlock(nn.Module):
    """One modality's pre-norm Mamba block: LayerNorm (Algorithm 1) and the mixer."""

    def __init__(self, config: CoupledMambaConfig, layer_idx: int):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = CoupledMambaMixer(config, layer_idx)


class CoupledMambaLayer(GradientCheckpointingLayer):
    """One Mamba block per modality around a single coupled scan; x^m + out_proj(scan(...)) per modality."""

    def __init__(self, config: CoupledMambaConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.blocks = nn.ModuleDict({name: CoupledMambaBlock(config, layer_idx) for name in config.modalities})

    def _ssm_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A (M, d_in, n) = -exp(A_log) and D (M, d_in), float32."""
        mixers = [block.mixer for block in self.blocks.values()]
        A = torch.stack([-torch.exp(mixer.A_log.float()) for mixer in mixers])
        return A, torch.stack([mixer.D.float() for mixer in mixers])

    @staticmethod
    def _stacked_scan_inputs(blocks, hidden_states, masks, windows) -> tuple[ScanInputs, list[torch.Tensor]]:
        """Every modality's scan inputs written into (M, ...) tensors as they come (x, gate, delta (M, b, d_in, l);
        B, C (M, b, l, n)), so that only one modality's intermediates are alive at a time; and the new conv windows.
        windows: per modality the conv inputs before these steps (b, d_in, k-1), or None."""
        stacked, new_windows = None, []
        for m, (block, hidden, mask, window) in enumerate(zip(blocks, hidden_states, masks, windows, strict=True)):
            inputs = block.mixer.scan_inputs(block.norm(hidden), mask, window)
            if stacked is None:
                stacked = ScanInputs(*(t.new_empty(len(blocks), *t.shape) for t in inputs[:5]), None)
            for buffer, value in zip(stacked[:5], inputs[:5], strict=True):
                buffer[m] = value
            new_windows.append(inputs.window)
            del inputs
        return stacked, new_windows

    def forward(self, hidden_states: torch.Tensor, masks=None, cache: CoupledMambaCache | None = None) -> torch.Tensor:
        """hidden_states: (b, M, l, d) every modality's stream; masks: one (b, l) bool per modality, or None.

        Returns the new hidden states (b, M, l, d): taking and giving the stack (not one tensor per modality) makes
        the model's `hidden_states` outputs the very tensors the next layer consumes, so gradients reach them. With a
        cache, the steps continue from its conv windows and coupled state, which are then replaced by those after the
        last step."""
        blocks, streams = list(self.blocks.values()), hidden_states.unbind(1)
        masks = masks or [None] * len(streams)
        windows = [None] * len(blocks) if cache is None else cache.conv_states[self.layer_idx].unbind(0)
        # 1-3. Per modality: LayerNorm, in_proj, causal conv, Δ, B, C, stacked along a leading modality axis.
        scan, windows = self._stacked_scan_inputs(blocks, streams, masks, windows)
        # 4. One coupled scan over every modality, from the cache's state when there is one.
        A, D = self._ssm_parameters()
        out = coupled_scan(
            scan.x, scan.delta, A, scan.B.transpose(-1, -2), scan.C.transpose(-1, -2), D, z=scan.gate,
            coupling=self.config.coupling, return_last_state=cache is not None, backend=self.config.scan_backend,
            initial_state=None if cache is None else cache.ssm_states[self.layer_idx],
        )  # fmt: skip
        del scan
        if cache is not None:  # new tensors, not in-place copies: autograd may hold the old state
            out, cache.ssm_states[self.layer_idx] = out
            cache.conv_states[self.layer_idx] = torch.stack(windows).to(cache.conv_states[self.layer_idx].dtype)
        # 5. out_proj per modality, and the residual.
        outputs = [block.mixer.output(y, mask) for block, y, mask in zip(blocks, out, masks, strict=True)]
        return hidden_states + torch.stack(outputs, dim=1)

    def step(self, *hidden_states: torch.Tensor, masks=None, cache: CoupledMambaCache) -> tuple[torch.Tensor, ...]:
        """One time step of `forward`: hidden_states one (b, d) per modality, masks one (b,) bool or None; updates
        the cache in place."""
        blocks, masks = list(self.blocks.values()), masks or [None] * len(hidden_states)
        conv_states = cache.conv_states[self.layer_idx]
        inputs = [
            block.mixer.scan_inputs_step(block.norm(hidden), mask, conv_states[m])
            for m, (block, hidden, mask) in enumerate(zip(blocks, hidden_states, masks, strict=True))
        ]
        A, D = self._ssm_parameters()
        x, gate, delta, B, C = (torch.stack(field) for field in zip(*[i[:5] for i in inputs], strict=True))
        out = coupled_state_update(
            cache.ssm_states[self.layer_idx], x, delta, A, B, C, D, z=gate, coupling=self.config.coupling
        )  #                                                                                           (M, b, d_in)
        return tuple(
            hidden + block.mixer.output(y, mask)
            for block, hidden, y, mask in zip(blocks, hidden_states, out, masks, strict=True)
        )


class CoupledMambaClassificationHead(nn.Module):
    """Fused features (b, fused) → (b, num_labels): dense → activation → dropout → output (the released code's
    RegressionHead, with ReLU), or dropout → output with head_hidden_size 0."""

    def __init__(self, config: CoupledMambaConfig):
        super().__init__()
        hidden = config.head_hidden_size
        self.dense = nn.Linear(config.fused_size, hidden) if hidden else None
        self.activation = config.head_activation
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.output = nn.Linear(hidden or config.fused_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            features = ACT2FN[self.activation](self.dense(features))
        return self.output(self.dropout(features))


# ------------------------------------------------------------------------------------------------ outputs
@dataclass
class CoupledMambaModelOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    last_hidden_state: (b, M, l, d) every modality's final, normalised stream, in `config.modalities` order.
    pooler_output: (b, fused) the fused pooled features (M·d for fusion "concat", d otherwise).
    modality_pooler_output: (b, M, d) every modality's pooled vector, before fusion.
    hidden_states: with `output_hidden_states`, num_hidden_layers + 1 tensors (b, M, l, d): the input projections
        and the output of every layer (before the final LayerNorm); with autograd on, the very tensors the layers
        take (gradients reach them), unless some step is padded in every modality (then copies put back in order).
    cache: the streaming state after the last step, with `use_cache` or a given cache.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    modality_pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    cache: CoupledMambaCache | None = None


@dataclass
class CoupledMambaSequenceClassifierOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    loss: scalar, when labels are given (L1 / MSE for regression, cross-entropy, BCE for multi-label).
    logits: (b, num_labels); for regression with one label, the predicted score is logits[:, 0].
    hidden_states, cache: as in `CoupledMambaModelOutput`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    cache: CoupledMambaCache | None = None


# ------------------------------------------------------------------------------------------------- models
class CoupledMambaPreTrainedModel(HubModelMixin, PreTrainedModel):
    config: CoupledMambaConfig
    config_class = CoupledMambaConfig
    base_model_prefix = "model"
    main_input_name = "text_features"
    input_modalities = ("text", "audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["CoupledMambaLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Mamba's initialisation as upstream mamba_ssm (and so the released Coupled Mamba code) applies it:
        Linear weights keep PyTorch's kaiming-uniform default with zero biases, conv and out_proj kaiming-uniform,
        S4D-real A = 1..n, D = 1, Δ bias = softplus⁻¹(log-uniform Δ in [time_step_min, time_step_max]) with
        dt_proj's weight uniform ±r^-½ (the mixer-specific part is `mamba.py`'s). Departure from `mamba.py`, which
        follows transformers' normal(0.02) for in_proj and x_proj so that its checkpoints match: with B and C that
        small the state path of a freshly initialised mixer is ~1e-3 of the D skip, and on the bench's cross-modal
        task (`bench/bench_coupled.py` (c)) no coupling learned anything in 800 steps; with this init "mean" learns
        it in ~400. LayerNorms 1 / 0."""
        super()._init_weights(module)
        if isinstance(module, CoupledMambaMixer):
            init_mamba_mixer(module, self.config)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, CoupledMambaModel) and module.fusion_weights is not None:
            init.zeros_(module.fusion_weights)  # equal weights


class CoupledMambaModel(CoupledMambaPreTrainedModel):
    """Input projections → N coupled layers → final LayerNorm per modality → pooling → fusion.

    Inputs, for every modality m of `config.modalities` (text, audio, vision by default):
        {m}_features (b, l, D_m) float, on one time axis shared by all modalities (`CoupledMambaFeatureProcessor`
        puts them there); {m}_attention_mask (b, l), 1 for real steps (optional; see the module docstring).
    Streaming: pass `use_cache=True` (or a `CoupledMambaCache`) and feed the rest of the sequences through
    `cache=outputs.cache`, one or more steps at a time; outputs equal the full parallel pass.
    """

    def __init__(self, config: CoupledMambaConfig):
        super().__init__(config)
        self.main_input_name = f"{config.modalities[0]}_features"
        sizes = config.modality_input_sizes
        self.input_projections = nn.ModuleDict({m: CoupledMambaInputProjection(config, sizes[m]) for m in sizes})
        self.layers = nn.ModuleList([CoupledMambaLayer(config, i) for i in range(config.num_hidden_layers)])
        norms = {m: nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon) for m in config.modalities}
        self.final_norms = nn.ModuleDict(norms)
        weighted = config.fusion == "weighted"
        self.fusion_weights = nn.Parameter(torch.zeros(config.num_modalities)) if weighted else None
        self.gradient_checkpointing = False
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        text_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        vision_features: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        vision_attention_mask: torch.Tensor | None = None,
        cache: CoupledMambaCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_last_hidden_state: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CoupledMambaModelOutput:
        """Modalities other than text/audio/vision come as keywords `{m}_features=...`, `{m}_attention_mask=...`;
        `cache_params=` / `past_key_values=` are the pre-5.24 names of `cache`; other keywords as
        `cache_utils.check_forward_kwargs`.

        `output_last_hidden_state=False` leaves `last_hidden_state` None: the pooled outputs are then built piece by
        piece and the (b, M, l, d) output is never held (what the classifier does)."""
        named = {**_modality_inputs(self, kwargs), "text_features": text_features, "audio_features": audio_features}
        named.update(vision_features=vision_features, text_attention_mask=text_attention_mask)
        named.update(audio_attention_mask=audio_attention_mask, vision_attention_mask=vision_attention_mask)
        features, masks = self._check_inputs(named)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        cache = prepare_cache(self, cache, use_cache, features[0])
        # 1-2. Input projections onto the common width d, the coupled layers, the final LayerNorms: in parallel;
        # one step at a time only to continue a cache through steps at which every modality is padded (the parallel
        # pass can skip those only before the first real step).
        continuing = cache is not None and cache.seen_steps > 0
        run = forward_steps if continuing and padding_order(masks) is not None else forward_parallel
        encoded = run(self, features, masks, cache, output_hidden_states, output_last_hidden_state)
        # 3. Pooling per modality, then fusion.
        modality_pooled = pooled_modalities(encoded.statistics, cache, self.config.pooling, self.dtype)  # (b, M, d)
        return CoupledMambaModelOutput(
            last_hidden_state=encoded.last,
            pooler_output=fuse(modality_pooled, self.config.fusion, self.fusion_weights),
            modality_pooler_output=modality_pooled,
            hidden_states=tuple(encoded.depth_outputs) if output_hidden_states else None,
            cache=cache,
        )

    # ------------------------------------------------------------------------------------------- inputs
    def _check_inputs(self, named: dict) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Features in modality order and masks ((b, l) bool each, or None when nothing is padded)."""
        modalities = self.config.modalities
        known = {f"{m}_{suffix}" for m in modalities for suffix in ("features", "attention_mask")}
        unknown = [k for k, v in named.items() if v is not None and k.endswith(_MODALITY_SUFFIXES) and k not in known]
        if unknown:
            raise ValueError(f"unknown modality input(s) {unknown}: this model's modalities are {modalities}")
        features = [self._check_features(m, named.get(f"{m}_features")) for m in modalities]
        shapes = {m: tuple(int(s) for s in f.shape[:2]) for m, f in zip(modalities, features, strict=True)}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"every modality must share one (batch, time) axis, got {shapes}; CoupledMambaFeatureProcessor puts "
                "unaligned sequences on a common time axis"
            )
        shape = features[0].shape[:2]
        masks = [self._check_mask(m, named.get(f"{m}_attention_mask"), shape) for m in modalities]
        # Traced graphs keep the masks: a data-dependent shortcut would be frozen into them.
        if all(mask is None for mask in masks) or (
            not _is_tracing() and all(m is None or bool(m.all()) for m in masks)
        ):
            return features, None
        everything = torch.ones(shape, dtype=torch.bool, device=features[0].device)
        return features, [everything if mask is None else mask for mask in masks]

    def _check_features(self, modality: str, features) -> torch.Tensor:
        name, size = f"{modality}_features", self.config.modality_input_sizes[modality]
        if features is None:
            raise ValueError(f"{name} is missing: this model takes {', '.join(self.config.modalities)} features")
        if not isinstance(features, torch.Tensor) or not features.is_floating_point():
            kind = features.dtype if isinstance(features, torch.Tensor) else type(features).__name__
            raise TypeError(f"{name} must be a floating-point torch.Tensor (batch, time, {size}), got {kind}")
        if features.dim() != 3 or features.shape[-1] != size or 0 in features.shape:
            raise ValueError(
                f"{name} must have shape (batch, time, {size}) with time >= 1, got {tuple(features.shape)}"
            )
        return features

    @staticmethod
    def _check_mask(modality: str, mask, shape) -> torch.Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(shape):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"{modality}_attention_mask must be a (batch, time) = {tuple(shape)} tensor, got {got}")
        return mask.bool()


class CoupledMambaForSequenceClassification(CoupledMambaPreTrainedModel):
    """Coupled Mamba with a head on the fused pooled features: a sentiment score (regression, `num_labels=1`, L1 loss
    as the paper) or classes (2, 3 or 7 sentiment classes, cross-entropy).

    `labels`: (b,) or (b, 1) float scores for regression; (b,) integer classes for single-label classification;
    (b, num_labels) floats for multi-label. The loss follows `config.problem_type`, else transformers' rule: one label →
    regression, integer labels → single-label, float labels → multi-label. It is transformers' (`self.loss_function`,
    "ForSequenceClassification"), but for the paper's L1 regression loss (`config.regression_loss`).
    """

    accepts_loss_kwargs = False  # a mean per batch (Trainer divides by the accumulation steps): MSE has no token count

    def __init__(self, config: CoupledMambaConfig):
        super().__init__(config)
        self.loss_type = "ForSequenceClassification"
        self.main_input_name = f"{config.modalities[0]}_features"
        self.num_labels = config.num_labels
        self.model = CoupledMambaModel(config)
        self.classifier = CoupledMambaClassificationHead(config)
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        text_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        vision_features: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        vision_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: CoupledMambaCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CoupledMambaSequenceClassifierOutput:
        """Inputs as `CoupledMambaModel`; with a cache, the logits are those of every step seen so far."""
        outputs = self.model(
            text_features=text_features,
            audio_features=audio_features,
            vision_features=vision_features,
            text_attention_mask=text_attention_mask,
            audio_attention_mask=audio_attention_mask,
            vision_attention_mask=vision_attention_mask,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            output_last_hidden_state=False,  # only the pooled features are needed
            **_modality_inputs(self, kwargs),
        )
        logits = self.classifier(outputs.pooler_output)
        loss = None if labels is None else self._loss(logits, labels)
        return CoupledMambaSequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, cache=outputs.cache
        )

    def _problem_type(self, labels: torch.Tensor) -> str:
        if self.config.problem_type is not None:
            return self.config.problem_type
        if self.num_labels == 1:
            return "regression"
        if labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
            return "single_label_classification"
        return "multi_label_classification"

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """transformers' loss (`self.loss_function`: MSE, cross-entropy or BCE with logits, by problem type), but the
        paper's L1 for regression with `config.regression_loss="l1"`. logits (b, num_labels); labels as the class."""
        labels = labels.to(logits.device)
        problem_type = self._problem_type(labels)
        if problem_type == "regression" and self.config.regression_loss == "l1":
            return F.l1_loss(logits, labels.reshape(logits.shape).to(logits.dtype))
        if problem_type == "single_label_classification":
            labels = labels.reshape(-1)
            valid = labels[labels != -100]
            if bool(((valid < 0) | (valid >= self.num_labels) | (valid != valid.round())).any()):
                raise ValueError(
                    f"labels must be class indices in [0, {self.num_labels}) for single-label classification, got "
                    f"{valid[:8].tolist()}; a sentiment score needs num_labels=1 (regression)"
                )
        # Labels in the dtype from which transformers infers the same problem type when config.problem_type is None.
        labels = labels.long() if problem_type == "single_label_classification" else labels.to(logits.dtype)
        return self.loss_function(labels=labels, pooled_logits=logits, config=self.config)


__all__ = [
    "CoupledMambaCache",
    "CoupledMambaForSequenceClassification",
    "CoupledMambaModel",
    "CoupledMambaModelOutput",
    "CoupledMambaPreTrainedModel",
    "CoupledMambaSequenceClassifierOutput",
]
