"""The recurrent cache across transformers 5.17–5.24, and the keyword rules every forward in this package follows.

transformers 5.24 renamed the cache argument and output field from `cache_params` / `past_key_values` to `cache`;
`generate()` passes `cache=` from 5.24 on and `cache_params=` (for classes whose name contains "Mamba") before it. Our
forwards take `cache=` and still accept the two old names (`pop_legacy_cache`), and refuse any other unknown keyword
(`reject_unknown_kwargs`): a `**kwargs` that swallowed `cache=` made 5.24's `generate()` restart every step from a zero
state, wrong tokens and no error.

The cache object is transformers' `DynamicCache(config=text_config)`: one `LinearAttentionLayer` per Mamba block,
holding `conv_states[0]` (b, d_in, k) and `recurrent_states[0]` (b, d_in, n). `Cache.get_conv_state`,
`get_recurrent_state` and `is_recording_past` exist only since 5.23, so this module reads the layer's fields, which
are the same in 5.17–5.24 (transformers/cache_utils.py, `LinearAttentionCacheLayerMixin.__init__`).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache

LEGACY_CACHE_NAMES = ("cache_params", "past_key_values")


def pop_legacy_cache(cache: Any, kwargs: dict[str, Any]) -> Any:
    """The cache passed as `cache=` or under a pre-5.24 name (removed from kwargs); one of them at most."""
    for name in LEGACY_CACHE_NAMES:
        legacy = kwargs.pop(name, None)
        if legacy is None:
            continue
        if cache is not None and legacy is not cache:
            raise TypeError(f"got two different caches, cache= and {name}=: pass it once, as cache=")
        cache = legacy
    return cache


def reject_unknown_kwargs(function: str, kwargs: dict[str, Any]) -> None:
    """Raises the TypeError Python raises for an unexpected keyword, naming every unknown one."""
    if kwargs:
        names = ", ".join(repr(name) for name in sorted(kwargs))
        raise TypeError(f"{function}() got unexpected keyword argument(s) {names}")


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


__all__ = [
    "LEGACY_CACHE_NAMES",
    "LegacyCacheOutputMixin",
    "cached_states",
    "is_recording_past",
    "pop_legacy_cache",
    "reject_unknown_kwargs",
]
