"""The recurrent cache across transformers 5.17–5.25, and the keyword rule every forward in this package follows.

Keywords, as LLaVA's forwards (transformers' `models/llava/modeling_llava.py`): `**kwargs: Unpack[TransformersKwargs]`
checked by `check_forward_kwargs`, which refuses what no caller of transformers passes (a `**kwargs` that swallowed
`cache=` made 5.24's `generate()` restart every step from a zero state, wrong tokens and no error). transformers 5.24
renamed the cache argument and output field from `cache_params` / `past_key_values` to `cache`; `generate()` passes
`cache_params=` before it. Our forwards also take the old names, through transformers' `deprecate_kwarg`.

The cache object is transformers' `DynamicCache(config=text_config)`: one `LinearAttentionLayer` per Mamba block,
holding `conv_states[0]` (b, d_in, k) and `recurrent_states[0]` (b, d_in, n). `Cache.get_conv_state`,
`get_recurrent_state` and `is_recording_past` exist only since 5.23, so this module reads the layer's fields, which
are the same in 5.17–5.25 (transformers/cache_utils.py, `LinearAttentionCacheLayerMixin.__init__`).

State rollback (5.25+). Assisted and prompt-lookup decoding run the drafted tokens through the model, then `crop` the
cache back to the last accepted token. 5.25 makes a linear-attention cache croppable: `activate_past_recording(k)`
makes the layer keep every conv input (`update_conv_state` appends instead of keeping the last k) and the recurrent
state before each update (`update_recurrent_state` with a list of per-token states appends them); `crop(-n)` restores
the state n tokens back. A mixer that records must therefore never update the cache in place, and must hand over the
per-token states of the steps that may be cropped (`recurrent_states_to_keep`). 5.25 also counts the tokens a layer
has seen (`get_seq_length`, which `generate()` reads when it continues from a cache): a decode step that updates the
conv window in place reports its token with `increase_count` (`count_step_in_place`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers.cache_utils import Cache
from transformers.generation import GenerationMixin, GenerationMode
from transformers.utils import TransformersKwargs
from transformers.utils.deprecation import deprecate_kwarg

LEGACY_CACHE_NAMES = ("cache_params", "past_key_values")
# transformers 5.25's cache_utils.py: per-token state rollback (`Cache.get_recurrent_states_to_keep`, list-form
# `update_recurrent_state`) and token counting for linear layers (`Cache.increase_count`, `get_seq_length`).
RECURRENT_CACHE_RELEASE = "5.25"
SUPPORTS_STATE_ROLLBACK = hasattr(Cache, "get_recurrent_states_to_keep")
COUNTS_RECURRENT_TOKENS = hasattr(Cache, "increase_count")
# generate() takes a cache as `cache=` since 5.24; before, a *Mamba* class's cache went under `cache_params`, which our
# forwards do not declare, so transformers' own check refused it.
TAKES_CACHE_ARGUMENT = Version(transformers.__version__).release[:2] >= (5, 24)

LOSS_KWARGS = ("num_items_in_batch", "shift_labels", "ignore_index")  # transformers' `ForCausalLMLoss` beside labels
# What transformers' callers pass to any forward: `TransformersKwargs` (the same in 5.17–5.25), the loss's, and
# `cache_position` (generate() of older releases).
CALLER_KWARGS = frozenset(TransformersKwargs.__annotations__) | {*LOSS_KWARGS, "cache_position"}


def check_forward_kwargs(model: torch.nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword rule of every forward here: `kwargs` (beyond the forward's own arguments) may hold the names of
    `CALLER_KWARGS`, which mean nothing to a recurrent model but the loss's, and `None` under any name. Raises the
    TypeError Python raises for an unexpected keyword, naming every other one. Returns the loss keywords given (for
    `self.loss_function`)."""
    unknown = sorted(name for name, value in kwargs.items() if value is not None and name not in CALLER_KWARGS)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise TypeError(f"{type(model).__name__}.forward() got unexpected keyword argument(s) {names}")
    return {name: kwargs[name] for name in LOSS_KWARGS if kwargs.get(name) is not None}


def legacy_cache_names(forward: Callable) -> Callable:
    """A forward that also takes its `cache` as `cache_params=` or `past_key_values=` (transformers < 5.24), with
    transformers' deprecation warning; both an old and the new name at once is a ValueError. A call without an old
    name goes straight to the forward: the two `deprecate_kwarg` wrappers cost a small model's decode step 2%."""
    renaming = forward
    for name in LEGACY_CACHE_NAMES:  # 5.40: the release in which LLaVA's `deprecate_kwarg` drops `past_key_values`
        renaming = deprecate_kwarg(name, "5.40.0", new_name="cache", raise_if_both_names=True)(renaming)

    @functools.wraps(renaming)
    def forward_with_legacy_names(*args, **kwargs):
        if any(name in kwargs for name in LEGACY_CACHE_NAMES):
            return renaming(*args, **kwargs)
        return forward(*args, **kwargs)

    return forward_with_legacy_names


def generation_cache(model_inputs: dict[str, Any]) -> Cache | None:
    """The cache among generate()'s inputs for the forward, under `cache` or an old name (5.17–5.23): popped."""
    caches = [model_inputs.pop(name, None) for name in ("cache", *LEGACY_CACHE_NAMES)]
    return next((cache for cache in caches if cache is not None), None)


class LegacyCacheOutputMixin:
    """For output dataclasses with a `cache` field: reads `output.cache_params` as `output.cache` on transformers
    < 5.24 too (5.24's `ModelOutput` maps both old names itself)."""

    @property
    def cache_params(self):
        return self.cache


def cached_states(cache: Cache | None, layer_idx: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(conv window (b, d_in, k), recurrent state (b, d_in, n)) of a layer that has seen steps; (None, None) before."""
    if cache is None:
        return None, None
    layer = cache.layers[layer_idx]
    if not layer.has_previous_state[0]:
        return None, None
    return layer.conv_states[0], layer.recurrent_states[0]


def is_recording_past(cache: Cache, layer_idx: int) -> bool:
    """Whether the layer keeps every conv input (assisted decoding's rollback) rather than the last k."""
    return bool(getattr(cache.layers[layer_idx], "record_past", False))


def recurrent_states_to_keep(cache: Cache, layer_idx: int) -> int:
    """How many of the last per-token recurrent states the layer asks for (0 unless it records, and before 5.25)."""
    return cache.get_recurrent_states_to_keep(layer_idx) if SUPPORTS_STATE_ROLLBACK else 0


def count_step_in_place(cache: Cache, layer_idx: int) -> None:
    """Counts one token for a decode step that updated the conv window in place, not through `update_conv_state`
    (5.25+; earlier releases count nothing for a linear layer)."""
    increase_count = getattr(cache, "increase_count", None)
    if increase_count is not None:
        increase_count(layer_idx, 0)


def _holds_state(cache: Any) -> bool:
    """Whether a cache has seen tokens (a fresh `DynamicCache` has not)."""
    layers = getattr(cache, "layers", ())
    return any(getattr(layer, "has_previous_state", {}).get(0, False) for layer in layers)


# A token per generate() call running in this context (`generation_call`), else None.
_GENERATION_CALL: contextvars.ContextVar[object | None] = contextvars.ContextVar("generation_call", default=None)


@contextlib.contextmanager
def generation_call():
    """Marks a generate() call: nothing changes the model's modules or parameters while one runs (transformers'
    generation loop only calls the forward), so the fused decode step checks them on its first step of the call
    (`mamba_decode.StackWeights.holds`) and trusts that check on the others. Outside a call every step checks.
    Nested calls (an assistant model's) each check once."""
    token = _GENERATION_CALL.set(object())
    try:
        yield
    finally:
        _GENERATION_CALL.reset(token)


def current_generation_call() -> object | None:
    """The token of the generate() call running in this context (`generation_call`), or None."""
    return _GENERATION_CALL.get()


def first_parameter(module: torch.nn.Module, floating: bool = False) -> torch.nn.Parameter | None:
    """The first of `module.parameters()` (with `floating`, the first floating-point one), or None: the submodules
    walked in `named_modules()`'s order (depth first, each once) without its nested generators, which cost ~15 us
    a call on a small model where generate() reads the model's device twice a token."""
    pending, seen = [module], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for parameter in current._parameters.values():
            if parameter is not None and (not floating or parameter.is_floating_point()):
                return parameter
        pending.extend(child for child in reversed(current._modules.values()) if child is not None)
    return None


class RecurrentGenerationMixin:
    """For a `GenerationMixin` model whose cache is recurrent. Assisted and prompt-lookup decoding need 5.25's state
    rollback, and continuing from a returned cache needs its token count (generate() feeds only the tokens the
    cache has not seen); on an earlier transformers both are refused, naming the release, before anything runs.
    generate() runs as transformers' inside `generation_call()`, so that the fused decode step checks
    the model's weights once per call rather than at every token."""

    @functools.wraps(GenerationMixin.generate)
    def generate(self, *args, **kwargs):
        with generation_call():
            return super().generate(*args, **kwargs)

    @property
    def device(self) -> torch.device:
        """As transformers' `device` (the first parameter's), read without `parameters()` (`first_parameter`):
        transformers' `prepare_inputs_for_generation` reads it twice a token."""
        parameter = first_parameter(self)
        return super().device if parameter is None else parameter.device

    @property
    def dtype(self) -> torch.dtype:
        """As transformers' `dtype` (the first floating-point parameter's), read as `device` is."""
        parameter = first_parameter(self, floating=True)
        return super().dtype if parameter is None else parameter.dtype

    def _validate_generation_mode(self, generation_mode, *args, **kwargs):
        if generation_mode == GenerationMode.ASSISTED_GENERATION and not SUPPORTS_STATE_ROLLBACK:
            raise ValueError(
                f"{type(self).__name__}: assisted decoding (assistant_model=, prompt_lookup_num_tokens=) needs "
                f"transformers>={RECURRENT_CACHE_RELEASE}, which rolls a recurrent state back to the last accepted "
                f"token; transformers {transformers.__version__} is installed"
            )
        return super()._validate_generation_mode(generation_mode, *args, **kwargs)

    def _validate_model_kwargs(self, model_kwargs: dict[str, Any]):
        given = [name for name in ("cache", *LEGACY_CACHE_NAMES) if model_kwargs.get(name) is not None]
        filled = [name for name in given if _holds_state(model_kwargs[name])]
        if filled and not COUNTS_RECURRENT_TOKENS:
            raise ValueError(
                f"{type(self).__name__}.generate(): continuing from a cache ({filled[0]}=) needs "
                f"transformers>={RECURRENT_CACHE_RELEASE}, which counts the tokens a recurrent cache has seen; "
                f"transformers {transformers.__version__} is installed: pass the whole sequence without the cache"
            )
        if given and not TAKES_CACHE_ARGUMENT:
            raise ValueError(
                f"{type(self).__name__}.generate(): transformers {transformers.__version__} makes the cache itself "
                f"and takes none ({given[0]}=) for this model; 5.24 takes one as cache=: pass none"
            )
        return super()._validate_model_kwargs(model_kwargs)


__all__ = [
    "CALLER_KWARGS",
    "COUNTS_RECURRENT_TOKENS",
    "LEGACY_CACHE_NAMES",
    "LOSS_KWARGS",
    "RECURRENT_CACHE_RELEASE",
    "SUPPORTS_STATE_ROLLBACK",
    "TAKES_CACHE_ARGUMENT",
    "LegacyCacheOutputMixin",
    "RecurrentGenerationMixin",
    "cached_states",
    "check_forward_kwargs",
    "count_step_in_place",
    "current_generation_call",
    "first_parameter",
    "generation_cache",
    "generation_call",
    "is_recording_past",
    "legacy_cache_names",
    "recurrent_states_to_keep",
]
