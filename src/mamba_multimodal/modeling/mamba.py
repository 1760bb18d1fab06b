"""Mamba language model (Gu & Dao, arXiv 2312.00752) on this package's SSM core.

Takes this package's `MambaConfig` (transformers' plus `scan_backend`; transformers' own works too) and has exactly
the state-dict keys of transformers' `MambaForCausalLM` (`backbone.embeddings`, `backbone.layers.N.{norm,
mixer.{in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj}}`, `backbone.norm_f`, `lm_head`), so any Mamba checkpoint
on the Hub loads as it is. Compared with transformers' CPU path:
- the scan runs on `ssm.selective_scan` (fused C++ kernel on CPU, mamba_ssm on CUDA), not an indexed Python loop;
- a decode step on CPU (generation) runs the whole stack in one call of the C++ kernel (`mamba_decode.py`), the
  module-by-module step below staying its reference (and the path wherever the fused one does not apply);
- every projection, `dt_proj` and `conv1d` included, is called as a module, so LoRA adapters on any of them train;
- padded positions contribute nothing, also with right padding and `use_bias=True`: pads are zeroed before the
  conv and the scan, and their step Δ is 0, so the state passes through them unchanged;
- a prefill that continues an existing cache starts from the cached state (transformers restarts from zero), in
  one parallel scan that autograd can differentiate through;
- the cache is `cache=` in every transformers from 5.17 to 5.25 (`cache_utils.py`), and unknown keywords raise
  (`cache_utils.check_forward_kwargs`: those transformers' callers pass are accepted);
- assisted and prompt-lookup decoding roll the state back per token (transformers 5.25's protocol, `cache_utils.py`).

Glossary: b batch, l sequence length, d hidden size, d_in intermediate size (expand * d), n state size, r dt rank.
Not registered as model_type "mamba" (transformers owns it): use `mamba_multimodal.MambaForCausalLM` directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple

from ..configuration.configuration_mamba import MambaConfig
from ..hub_mixin import weights_named_on_error
from .cache_utils import (
    LegacyCacheOutputMixin,
    RecurrentGenerationMixin,
    cached_states,
    check_forward_kwargs,
    count_step_in_place,
    generation_cache,
    is_recording_past,
    legacy_cache_names,
    recurrent_states_to_keep,
)
from .mamba_decode import (
    CacheStates,
    decode_logits,
    decode_stack,
    fused_decode_plan,
    fused_linear,
    has_forward_hooks,
    head_fits,
    without_function_modes,
)
from .precision import float32_unless_native_bf16
from .ssm import (
    _announce,
    causal_conv1d_update,
    project_tokens,
    selective_scan,
    selective_scan_states,
    selective_state_update,
)

logger = logging.get_logger(__name__)


def _zero_padding(hidden_states: torch.Tensor, mask: torch.Tensor | None, time_dim: int) -> torch.Tensor:
    """Zeroes padded time steps. hidden_states: time on `time_dim`; mask: (b, l) with 1 for real tokens."""
    if mask is None:
        return hidden_states
    shape = [mask.shape[0], 1, 1]
    shape[time_dim] = mask.shape[1]
    return hidden_states * mask.reshape(shape).to(hidden_states.dtype)


class MambaMixerParameters(nn.Module):
    """The parameters of one Mamba mixer, named as in transformers and mamba_ssm (`in_proj`, `conv1d`, `x_proj`,
    `dt_proj`, `A_log`, `D`, `out_proj`), for any config with `MambaConfig`'s field names; subclasses add the
    computation (this file's `MambaMixer`, Coupled Mamba's mixer). `init_mamba_mixer` initialises them."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.ssm_state_size = config.state_size
        self.conv_kernel_size = config.conv_kernel
        self.time_step_rank = int(config.time_step_rank)
        self.activation = config.hidden_act
        if self.activation not in ("silu", "swish"):
            raise ValueError(f"hidden_act must be 'silu' (Mamba's conv activation), got {self.activation!r}")
        self.in_proj = nn.Linear(self.hidden_size, 2 * self.intermediate_size, bias=config.use_bias)
        self.conv1d = nn.Conv1d(
            self.intermediate_size,
            self.intermediate_size,
            kernel_size=config.conv_kernel,
            groups=self.intermediate_size,
            padding=config.conv_kernel - 1,
            bias=config.use_conv_bias,
        )
        self.x_proj = nn.Linear(self.intermediate_size, self.time_step_rank + 2 * self.ssm_state_size, bias=False)
        self.dt_proj = nn.Linear(self.time_step_rank, self.intermediate_size, bias=True)
        self.A_log = nn.Parameter(torch.empty(self.intermediate_size, self.ssm_state_size))
        self.D = nn.Parameter(torch.empty(self.intermediate_size))
        self.out_proj = nn.Linear(self.intermediate_size, self.hidden_size, bias=config.use_bias)


class MambaMixer(MambaMixerParameters):
    """Selective SSM mixer: in_proj → causal conv → x_proj/dt_proj → selective scan (gated by z) → out_proj."""

    def __init__(self, config: MambaConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.config = config

    @property
    def scan_backend(self) -> str:
        return getattr(self.config, "scan_backend", "auto")

    def forward(
        self,
        hidden_states: torch.Tensor,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states: (b, l, d); attention_mask: (b, l) or None. Returns (b, l, d)."""
        # No shortcut for an all-ones mask: a data-dependent branch would be frozen into traced and ONNX graphs.
        mask = attention_mask
        conv_state, ssm_state = cached_states(cache, self.layer_idx)
        in_place = self._steps_in_place(cache, conv_state, hidden_states.shape[1])
        # 1. Input projection to the SSM branch x and the gate z.
        x, gate = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  #    (b, d_in, l) each
        x = _zero_padding(x, mask, time_dim=2)
        # 2. Causal depthwise conv over time, continuing the cached window when there is one.
        x = self._convolve(x, cache, conv_state, in_place)
        x = _zero_padding(x, mask, time_dim=2)
        # 3. Input-dependent step Δ and projections B, C. Δ = 0 at pads leaves the state untouched there.
        time_step, B, C = project_tokens(self.x_proj, x).split(
            [self.time_step_rank, self.ssm_state_size, self.ssm_state_size], dim=-1
        )  #                                                                          (b, l, r), (b, l, n), (b, l, n)
        delta = self.dt_proj(time_step).transpose(1, 2)  #                                               (b, d_in, l)
        if mask is not None:
            delta = _zero_padding(F.softplus(delta.float()), mask, time_dim=2)
        # 4. Selective scan (or one recurrent step), gated by silu(z).
        y = self._scan(x, delta, B.transpose(1, 2), C.transpose(1, 2), gate, mask is None, cache, ssm_state, in_place)
        # 5. Back to the residual width.
        return project_tokens(self.out_proj, y.to(hidden_states.dtype))

    def _steps_in_place(self, cache: Cache | None, conv_state: torch.Tensor | None, seq_len: int) -> bool:
        """One decoding step without autograd updates the cached tensors in place (mamba_ssm's step kernels). With
        autograd, or several steps, the cache is read and then replaced, so that backward() sees unmodified inputs;
        while the cache records (assisted decoding) it must see every update to be able to roll it back."""
        return (
            conv_state is not None
            and seq_len == 1
            and not torch.is_grad_enabled()
            and not is_recording_past(cache, self.layer_idx)
            and conv_state.shape[-1] == self.conv_kernel_size  # a recorded window cropped short of k is not
        )

    def _convolve(self, x: torch.Tensor, cache: Cache | None, conv_state, in_place: bool) -> torch.Tensor:
        """x: (b, d_in, l) → silu(causal conv(x)) (b, d_in, l); updates the cached conv window (b, d_in, k)."""
        seq_len = x.shape[-1]
        if in_place:
            count_step_in_place(cache, self.layer_idx)
            weight = self.conv1d.weight.squeeze(1)
            return causal_conv1d_update(x, conv_state, weight, self.conv1d.bias, activation=self.activation)
        if cache is not None:  # prepends the cached window (if any) and stores the newest k inputs (all, recording)
            x = cache.update_conv_state(x, self.layer_idx, conv_kernel_size=self.conv_kernel_size)
        # nn.Conv1d pads k-1 on both sides; keeping the first len outputs makes it causal.
        out = F.silu(self.conv1d(x)[..., : x.shape[-1]])
        return out[..., -seq_len:]

    def _scan(self, x, delta, B, C, gate, softplus: bool, cache: Cache | None, state, in_place: bool) -> torch.Tensor:
        """x, delta, gate: (b, d_in, l); B, C: (b, n, l); state: the cached (b, d_in, n) or None. Returns y (b, d_in,
        l) and stores the last state (and the per-token states a recording cache asks for) in the cache."""
        A = -torch.exp(self.A_log.float())  #                                                             (d_in, n)
        D = self.D.float()
        seq_len = x.shape[-1]
        if in_place:
            y = selective_state_update(state, x[..., 0], delta[..., 0], A, B[..., 0], C[..., 0], D, z=gate[..., 0],
                                       dt_softplus=softplus)  # fmt: skip
            return y.unsqueeze(-1)
        if cache is None:
            return selective_scan(x, delta, A, B, C, D, z=gate, delta_softplus=softplus, backend=self.scan_backend)
        # A recording cache asks for the states after each of the last `keep` steps: the steps before them go in one
        # parallel scan, those steps one by one from its last state.
        keep = self._states_to_keep(cache, state, seq_len)
        state = None if state is None else state.clone()  # the cache overwrites its tensor below
        parallel, stepped = slice(0, seq_len - keep), slice(seq_len - keep, seq_len)
        outputs, states = [], [state]
        if keep < seq_len:
            y, last_state = selective_scan(
                x[..., parallel],
                delta[..., parallel],
                A,
                B[..., parallel],
                C[..., parallel],
                D,
                z=gate[..., parallel],
                delta_softplus=softplus,
                return_last_state=True,
                backend=self.scan_backend,
                initial_state=state,
            )
            outputs, states = [y], [last_state]
        if keep:
            y, kept = selective_scan_states(
                x[..., stepped], delta[..., stepped], A, B[..., stepped], C[..., stepped], D, z=gate[..., stepped],
                delta_softplus=softplus, initial_state=states[-1],
            )  # fmt: skip
            outputs, states = [*outputs, y], kept
        cache.update_recurrent_state(states if keep else states[-1], self.layer_idx)  # kept in float32
        return torch.cat(outputs, dim=-1)

    def _states_to_keep(self, cache: Cache, state: torch.Tensor | None, seq_len: int) -> int:
        """How many per-token states to hand to a recording cache: `crop(-m)` restores the m-th newest of them, or the
        state before the call for m = their number. A prefill ends with the k drafted tokens, so k + 1 states cover
        any m ≤ k; a verification pass (the last accepted token and the drafts) keeps all of its states, since the
        number of drafts can outgrow the k that the recording started with (a draft model's adaptive length)."""
        keep = recurrent_states_to_keep(cache, self.layer_idx)
        if keep == 0:
            return 0
        return seq_len if state is not None else min(seq_len, keep + 1)


class MambaRMSNorm(nn.Module):
    """RMSNorm computed in float32 (T5/Llama style), as transformers' Mamba."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.float()
        hidden_states = hidden_states * torch.rsqrt(hidden_states.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class MambaBlock(GradientCheckpointingLayer):
    """Pre-norm residual block: x + mixer(norm(x))."""

    def __init__(self, config: MambaConfig, layer_idx: int):
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.norm = MambaRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = MambaMixer(config, layer_idx=layer_idx)

    def forward(self, hidden_states, cache: Cache | None = None, attention_mask: torch.Tensor | None = None):
        residual = hidden_states.float() if self.residual_in_fp32 else hidden_states
        hidden_states = self.norm(hidden_states.to(self.norm.weight.dtype))
        return residual + self.mixer(hidden_states, cache=cache, attention_mask=attention_mask)


@torch.no_grad()
def init_mamba_mixer(module: nn.Module, config) -> None:
    """transformers' Mamba initialisation of one mixer: S4D-real A, D = 1, Δ bias = softplus⁻¹(log-uniform Δ),
    Kaiming conv and out_proj. `module` has Mamba's parameter names; `config` Mamba's time-step fields."""
    A = torch.arange(1, module.ssm_state_size + 1, dtype=torch.float32).expand(module.intermediate_size, -1)
    init.copy_(module.A_log, torch.log(A))
    init.ones_(module.D)
    dt_init_std = config.time_step_rank**-0.5 * config.time_step_scale
    if config.time_step_init_scheme == "constant":
        init.constant_(module.dt_proj.weight, dt_init_std)
    else:
        init.uniform_(module.dt_proj.weight, -dt_init_std, dt_init_std)
    log_min, log_max = math.log(config.time_step_min), math.log(config.time_step_max)
    dt = torch.exp(torch.rand(module.intermediate_size) * (log_max - log_min) + log_min)
    dt = dt.clamp(min=config.time_step_floor)
    init.copy_(module.dt_proj.bias, dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
    init.kaiming_uniform_(module.conv1d.weight, a=math.sqrt(5))
    if module.conv1d.bias is not None:
        init.zeros_(module.conv1d.bias)
    init.kaiming_uniform_(module.out_proj.weight, a=math.sqrt(5))
    if config.rescale_prenorm_residual:
        init.copy_(module.out_proj.weight, module.out_proj.weight / math.sqrt(config.num_hidden_layers))


@dataclass
class MambaOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    last_hidden_state: (b, l, d) after the final norm.
    cache: the recurrent state after the last step (`DynamicCache`), with `use_cache`.
    hidden_states: with `output_hidden_states`, the output of every block and then of the final norm, (b, l, d) each.
    """

    last_hidden_state: torch.Tensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class MambaCausalLMOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    loss: scalar next-token cross-entropy, when labels are given.
    logits: (b, l, vocab) float32 (or the last `logits_to_keep` positions).
    cache, hidden_states: as in `MambaOutput`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


# state-spaces/mamba's own checkpoints call the embedding `embedding`; transformers (and this package) `embeddings`.
_STATE_SPACES_EMBEDDING = r"^(backbone\.)?embedding\."


class MambaPreTrainedModel(PreTrainedModel):
    config_class = MambaConfig
    base_model_prefix = "backbone"
    _no_split_modules = ["MambaBlock"]
    supports_gradient_checkpointing = True
    # bf16 weights on a CPU without native bf16 (`precision`): activations rounded to bf16 after every widened op,
    # as the fused bf16 decode step rounds them (float32 between ops would part from its tokens)
    keeps_bf16_activations = True

    @classmethod
    def from_pretrained(cls, *args, key_mapping: dict[str, str] | None = None, **kwargs):
        """transformers' `from_pretrained`, which also reads original state-spaces/mamba checkpoints: their
        `embedding.` key is renamed on load (transformers would leave the embedding random with a warning), and a
        later `save_pretrained` writes transformers' names. A truncated weights file is named in the error."""
        key_mapping = {_STATE_SPACES_EMBEDDING: r"\1embeddings.", **(key_mapping or {})}
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        with weights_named_on_error(source, kwargs.get("subfolder", "")):
            loaded = super().from_pretrained(*args, key_mapping=key_mapping, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) with output_loading_info
        # transformers reverses the key mappings it used when it saves; this one must not be reversed.
        conversions = getattr(model, "_weight_conversions", None)
        if conversions is not None:
            model._weight_conversions = [c for c in conversions if _STATE_SPACES_EMBEDDING not in c.source_patterns]
        return loaded

    @torch.no_grad()
    def _init_weights(self, module):
        """transformers' Mamba initialisation: S4D-real A, D = 1, Δ bias = softplus⁻¹(log-uniform Δ)."""
        super()._init_weights(module)
        if not isinstance(module, MambaMixer):
            return
        init_mamba_mixer(module, self.config)


class MambaModel(MambaPreTrainedModel):
    """Embeddings → N Mamba blocks → final RMSNorm."""

    _input_embed_layer = "embeddings"  # what transformers' get_input_embeddings / set_input_embeddings reach

    def __init__(self, config: MambaConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MambaBlock(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.norm_f = MambaRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MambaOutput:
        """input_ids: (b, l) or inputs_embeds: (b, l, d); attention_mask: (b, l), 1 for real tokens.

        cache: a `DynamicCache` returned by an earlier call (`cache_params=` / `past_key_values=` also accepted); the
        steps continue from its state, in parallel, and it is updated. kwargs: as `cache_utils.check_forward_kwargs`."""
        check_forward_kwargs(self, kwargs)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = self.keeps_cache(use_cache)
        inputs_embeds = self._embed(input_ids, inputs_embeds, attention_mask)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        with without_function_modes():  # the plan reads ~12 tensors a layer: keep a mode's hook off each access
            plan = self._fused_decode_plan(inputs_embeds, cache, output_hidden_states)
            if plan is not None:
                hidden_states = decode_stack(self, plan, inputs_embeds, cache, attention_mask)
                all_hidden_states = None
        if plan is None:
            hidden_states, all_hidden_states = self._blocks(inputs_embeds, cache, attention_mask, output_hidden_states)
        cache = cache if use_cache else None
        return MambaOutput(last_hidden_state=hidden_states, cache=cache, hidden_states=all_hidden_states)

    def keeps_cache(self, use_cache: bool | None) -> bool:
        """Whether a forward returns (and, without one, makes) a cache: `use_cache`, else the config's outside
        training; never while training with gradient checkpointing."""
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        return bool(use_cache) and not (self.gradient_checkpointing and self.training)

    def decode_step_logits(self, lm_head: nn.Module, input_ids, inputs_embeds, cache, attention_mask):
        """float32 logits (b, 1, vocab) of `lm_head` after one decode step from input_ids (b, 1) or inputs_embeds
        (b, 1, d), by one call of the C++ kernel for the blocks, the final norm and the head
        (`mamba_decode.decode_logits`), the cache updated in place; None where that step does not apply, the cache
        untouched (the caller then runs the forward and the head, whose logits these equal, and which reports
        inputs of the wrong shape). For a caller that asks nothing else of this forward (no hidden states): the
        Python of the module call, the forward and the head was ~40% of a small model's decode step on CPU (the
        demo LM's, bf16). The embeddings run as a module when they have no hooks (else the forward runs, which would
        run them once more)."""
        inputs = inputs_embeds if input_ids is None else input_ids
        if (
            cache is None
            or torch.is_grad_enabled()
            or has_forward_hooks(self)  # the module call this skips would run them
            or (input_ids is None) == (inputs_embeds is None)
            or inputs.dim() != (2 if inputs_embeds is None else 3)
            or inputs.shape[1] != 1
            or (inputs_embeds is not None and inputs_embeds.shape[2] != self.config.hidden_size)
            or (attention_mask is not None and tuple(attention_mask.shape) != (inputs.shape[0], 1))
        ):
            return None
        if inputs_embeds is None:
            if has_forward_hooks(self.embeddings):
                return None
            inputs_embeds = self.embeddings(input_ids)
        with without_function_modes():
            plan = self._fused_decode_plan(inputs_embeds, cache, output_hidden_states=False)
            if plan is None or not head_fits(lm_head, inputs_embeds.dtype, self.config.hidden_size):
                return None
            return decode_logits(self, plan, inputs_embeds, cache, attention_mask, lm_head)

    def _blocks(self, hidden_states, cache, attention_mask, output_hidden_states):
        """The blocks and the final norm, module by module (the reference path). Returns the final norm's output
        (b, l, d) and, with output_hidden_states, every block's output and then it; else None."""
        all_hidden_states = () if output_hidden_states else None
        for block in self.layers:
            hidden_states = block(hidden_states, cache=cache, attention_mask=attention_mask)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        hidden_states = self.norm_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return hidden_states, all_hidden_states

    def _fused_decode_plan(self, inputs_embeds, cache, output_hidden_states) -> CacheStates | None:
        """The kernel's plan (`mamba_decode.CacheStates`) when this step runs as one call of the C++ decode step, with
        this file's own block classes (a subclass may compute otherwise); None for the reference path."""
        classes = (MambaBlock, MambaRMSNorm, MambaMixer)
        plan = fused_decode_plan(self, classes, inputs_embeds, cache, output_hidden_states)
        if plan is not None:
            _announce("the Mamba decode step", "cpu")
        return plan

    def _embed(self, input_ids, inputs_embeds, attention_mask) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids (b, l) or inputs_embeds (b, l, hidden_size)")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be 2-D (batch, length), got shape {tuple(input_ids.shape)}")
            inputs_embeds = self.embeddings(input_ids)
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"inputs_embeds must be (batch, length, {self.config.hidden_size}), got {tuple(inputs_embeds.shape)}"
            )
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(inputs_embeds.shape[:2]):
            raise ValueError(
                f"attention_mask must be (batch, length) = {tuple(inputs_embeds.shape[:2])}, "
                f"got {tuple(attention_mask.shape)}"
            )
        return inputs_embeds


def head_logits(
    lm_head: nn.Linear, hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor, backend: str = "auto"
) -> torch.Tensor:
    """float32 logits (b, l', vocab) of the last `logits_to_keep` positions of hidden_states (b, l, d): all for 0,
    the given positions for a tensor of indices (transformers' convention). Generation's one position per row goes
    through the C++ kernel's GEMV on CPU (`mamba_decode.fused_linear`; `backend`: the config's `scan_backend`,
    "pytorch" forces torch's product), which streams the weights faster than torch's. Logits of whole sequences
    (training, scoring) stay torch's, so that they are the same with and without autograd (PEFT's wrapper, tests)."""
    if logits_to_keep:
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        hidden_states = hidden_states[:, keep]
    hidden_states = hidden_states.to(lm_head.weight.dtype)
    logits = None
    if hidden_states.shape[1] == 1:
        with without_function_modes():
            logits = fused_linear(lm_head, hidden_states, backend)
    return lm_head(hidden_states).float() if logits is None else logits


def prepare_mamba_generation_inputs(prepare, input_ids, attention_mask, is_first_iteration, **kwargs) -> dict:
    """transformers' `prepare_inputs_for_generation` (`prepare`) for a recurrent model: the cache always under
    `cache` (5.17–5.23 pass it as `cache_params`), and no mask after the prompt (every generated token is real). A
    prompt that continues a returned cache comes with the mask of the whole conversation: the state holds what the
    mask said of the earlier tokens, and the new ones keep its last columns."""
    model_inputs = prepare(input_ids, attention_mask=attention_mask, is_first_iteration=is_first_iteration, **kwargs)
    model_inputs["cache"] = generation_cache(model_inputs)
    if kwargs.get("use_cache") and not is_first_iteration:
        model_inputs["attention_mask"] = None
    mask, inputs = model_inputs.get("attention_mask"), model_inputs.get("input_ids")
    if inputs is None:
        inputs = model_inputs.get("inputs_embeds")
    if mask is not None and inputs is not None and mask.shape[1] > inputs.shape[1]:
        model_inputs["attention_mask"] = mask[:, -inputs.shape[1] :]
    return model_inputs


class MambaForCausalLM(RecurrentGenerationMixin, MambaPreTrainedModel, GenerationMixin):
    """Mamba LM with a head tied to the embeddings; `generate()` keeps a constant-size recurrent state."""

    _tied_weights_keys = {"lm_head.weight": "backbone.embeddings.weight"}

    def __init__(self, config: MambaConfig):
        super().__init__(config)
        self.backbone = MambaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, is_first_iteration=False, **kwargs):
        return prepare_mamba_generation_inputs(
            super().prepare_inputs_for_generation, input_ids, attention_mask, is_first_iteration, **kwargs
        )

    @float32_unless_native_bf16
    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MambaCausalLMOutput:
        """labels: (b, l), shifted inside; -100 is ignored. Returns logits (b, l, vocab) in float32.

        cache: as `MambaModel`. kwargs: as `cache_utils.check_forward_kwargs`; the loss's go to `self.loss_function`:
        `num_items_in_batch` (Trainer's count of label tokens over the accumulated batches, so that the loss is the
        mean over all of them), `shift_labels` (b, l) (targets already aligned with the logits; labels then only ask
        for the loss), `ignore_index`."""
        loss_kwargs = check_forward_kwargs(self, kwargs)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if labels is None and not output_hidden_states:  # a decode step on CPU: one call of the fused kernel
            logits = self.backbone.decode_step_logits(self.lm_head, input_ids, inputs_embeds, cache, attention_mask)
            if logits is not None:
                return MambaCausalLMOutput(logits=logits, cache=cache if self.backbone.keeps_cache(use_cache) else None)
        outputs = self.backbone(
            input_ids,
            inputs_embeds=inputs_embeds,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            attention_mask=attention_mask,
        )
        backend = getattr(self.config, "scan_backend", "auto")
        logits = head_logits(self.lm_head, outputs.last_hidden_state, logits_to_keep, backend)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **loss_kwargs)
        return MambaCausalLMOutput(loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states)


__all__ = [
    "MambaBlock",
    "MambaCausalLMOutput",
    "MambaForCausalLM",
    "MambaMixer",
    "MambaMixerParameters",
    "MambaModel",
    "MambaOutput",
    "MambaPreTrainedModel",
    "MambaRMSNorm",
    "head_logits",
    "prepare_mamba_generation_inputs",
]
