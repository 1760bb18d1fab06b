"""Coupled Mamba's pooling and fusion: every modality's final stream (b, l, d) becomes one vector (b, d), the mean,
maximum or last real step over its real steps (`config.pooling`), and the M vectors become the fused features
(`config.fusion`: concatenated, averaged or softmax-weighted).

Pooling is kept as statistics, a value and a count of real steps, that merge over consecutive stretches of steps:
chunked inference pools piece by piece without holding the whole output, and a streaming cache
(`streaming_coupled_mamba.CoupledMambaCache`) pools over every step seen so far.
Glossary: M modalities, b batch, l time steps, d hidden size.
"""

from __future__ import annotations

import math

import torch


def pool_statistics(hidden: torch.Tensor, mask: torch.Tensor | None, pooling: str):
    """One modality's pooling statistic over l steps: hidden (b, l, d) → (value (b, d), count (b,)), in float32.

    value is a sum for "mean", a maximum for "max", the last real step for "last" (meaningless where count = 0)."""
    hidden = hidden.float()
    batch, length = hidden.shape[:2]
    if mask is None:  # no (b, l, d) temporaries: the sequences can be long
        count = torch.full((batch,), length, dtype=torch.long, device=hidden.device)
        if pooling == "mean":
            return hidden.sum(1), count
        return (hidden.amax(1) if pooling == "max" else hidden[:, -1]), count
    count = mask.sum(1)
    if pooling == "mean":
        value = torch.einsum("bld,bl->bd", hidden, mask.to(hidden.dtype))
    elif pooling == "max":
        value = hidden.masked_fill(~mask[..., None], -math.inf).amax(1)
    else:
        last = (mask * torch.arange(1, length + 1, device=mask.device)).argmax(1)  # the last real step
        value = hidden[torch.arange(batch, device=hidden.device), last]
    return value, count


def merge_statistics(old_value, old_count, value, count, pooling: str):
    """Pooling statistics of two consecutive stretches of steps → those of both."""
    if pooling == "mean":
        merged = old_value + value
    elif pooling == "max":
        merged = torch.maximum(old_value, value)
    else:
        merged = torch.where((count > 0)[..., None], value, old_value)
    return merged, old_count + count


def merged_statistics(statistics, normed: torch.Tensor, masks, pooling: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooling statistics (values (M, b, d), counts (M, b)) of the steps before, merged with those of
    normed (b, M, l, d) under masks (one (b, l) per modality, or None); `statistics` None: nothing before."""
    masks = masks or [None] * normed.shape[1]
    per_modality = [pool_statistics(normed[:, m], mask, pooling) for m, mask in enumerate(masks)]
    values, counts = torch.stack([s[0] for s in per_modality]), torch.stack([s[1] for s in per_modality])
    if statistics is None:
        return values, counts
    return merge_statistics(*statistics, values, counts, pooling)


def pooled_vectors(value: torch.Tensor, count: torch.Tensor, pooling: str) -> torch.Tensor:
    """The pooled vector from its statistics; zero for a modality with no real step."""
    if pooling == "mean":
        return value / count.clamp(min=1)[..., None]
    return torch.where((count > 0)[..., None], value, torch.zeros_like(value))


def fuse(pooled: torch.Tensor, fusion: str, fusion_weights: torch.Tensor | None) -> torch.Tensor:
    """(b, M, d) → (b, M·d) for "concat", (b, d) for "mean" and "weighted" (fusion_weights (M,), softmaxed)."""
    if fusion == "concat":
        return pooled.flatten(1)
    if fusion == "mean":
        return pooled.mean(1)
    return (torch.softmax(fusion_weights, dim=0).to(pooled.dtype)[:, None] * pooled).sum(1)


__all__ = ["fuse", "merge_statistics", "merged_statistics", "pool_statistics", "pooled_vectors"]
