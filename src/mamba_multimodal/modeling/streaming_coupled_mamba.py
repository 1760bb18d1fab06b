"""How `CoupledMambaModel` runs its layers over the time axis: in one parallel pass, in pieces, or one step at a time
from a cache (`CoupledMambaCache`).

Long and live sequences: `use_cache=True` (or a `CoupledMambaCache`) returns a cache after a parallel pass; a call
that passes it back continues from it, in parallel (`coupled_scan` from the cached state, the conv from the cached
window), and returns the outputs, and logits over every step seen so far, of one parallel pass over everything, to
1e-5. Only a continuation holding steps at which every modality is padded goes one step at a time
(`ssm.causal_conv1d_update`, `ssm_coupled.coupled_state_update`), skipping those steps. The same mechanism bounds
inference memory: without autograd, a batch goes through the layers in pieces of `config.inference_chunk_tokens` // b
steps through an internal cache. The streamed conv reads `conv1d.weight` directly: merge a LoRA adapter on conv1d before
streaming step by step.

Glossary (`modeling_coupled_mamba.py`'s): M modalities, b batch, l time steps, d hidden size, d_in mixer inner width,
n state size, k conv kernel.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..configuration.configuration_coupled_mamba import CoupledMambaConfig
from .pooling_coupled_mamba import merge_statistics, merged_statistics, pooled_vectors
from .ssm import _is_tracing


# ------------------------------------------------------------------------------------------------- steps
def padding_order(masks: list[torch.Tensor] | None) -> torch.Tensor | None:
    """(b, l) indices that put every step where all modalities are padded first, the others after in their order;
    None when there is no such step."""
    if masks is None:
        return None
    step_is_real = torch.stack(masks).any(0)  #                                                        (b, l)
    if not _is_tracing() and bool(step_is_real.all()):  # a traced graph must not freeze this branch
        return None
    return torch.sort(step_is_real.to(torch.uint8), dim=1, stable=True).indices


def _take_steps(tensor: torch.Tensor, order: torch.Tensor, time_dim: int = 1) -> torch.Tensor:
    """The steps order (b, l') of tensor (b, ..., l, ...), whose time axis is time_dim: (b, ..., l', ...)."""
    shape = [order.shape[0]] + [1] * (tensor.dim() - 1)
    shape[time_dim] = order.shape[1]
    index = order.reshape(shape).expand(*tensor.shape[:time_dim], order.shape[1], *tensor.shape[time_dim + 1 :])
    return tensor.gather(time_dim, index)


def _steps_of(tensor: torch.Tensor, piece: slice, order: torch.Tensor | None) -> torch.Tensor:
    """The steps `piece` of tensor (b, l, ...), counted in `order` (b, l) when there is one."""
    return tensor[:, piece] if order is None else _take_steps(tensor, order[:, piece])


def _put_steps(out: torch.Tensor, values: torch.Tensor, piece: slice, order: torch.Tensor | None) -> None:
    """Writes values (b, M, l_piece, d) into out (b, M, l, d) at the steps `piece`, counted in `order` (b, l)."""
    if order is None:
        out[:, :, piece] = values
    else:
        out.scatter_(2, order[:, None, piece, None].expand_as(values), values)


def _joined_pieces(piece_outputs: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per piece, per depth (b, M, l_piece, d) → per depth (b, M, l, d)."""
    if len(piece_outputs) == 1:
        return piece_outputs[0]
    return [torch.cat(depth_pieces, dim=2) for depth_pieces in zip(*piece_outputs, strict=True)]


# ------------------------------------------------------------------------------------------------- cache
class CoupledMambaCache:
    """What streaming inference carries from one step to the next, for a batch of b sequences.

    Attributes:
        conv_states: per layer, (M, b, d_in, k-1): the latest inputs of every modality's causal conv, oldest first.
        ssm_states: per layer, the coupled state c (b, d_in, n) in float32 ((M, b, d_in, n) with coupling "none").
        pooled, counts: (M, b, d) and (M, b) float32 pooling statistics of the steps seen so far (a sum for "mean",
            a running maximum for "max", the latest real step for "last") and the number of real steps.
        seen_steps: how many time steps were fed, padding included.
    """

    def __init__(self, config: CoupledMambaConfig, batch_size: int, dtype=torch.float32, device=None):
        modalities, inner, window = config.num_modalities, config.intermediate_size, config.conv_kernel - 1
        coupled = () if config.coupling != "none" else (modalities,)
        layers = range(config.num_hidden_layers)
        self.batch_size = batch_size
        self.conv_states = [
            torch.zeros(modalities, batch_size, inner, window, dtype=dtype, device=device) for _ in layers
        ]
        self.ssm_states = [torch.zeros(*coupled, batch_size, inner, config.state_size, device=device) for _ in layers]
        start = -math.inf if config.pooling == "max" else 0.0
        self.pooled = torch.full((modalities, batch_size, config.hidden_size), start, device=device)
        self.counts = torch.zeros(modalities, batch_size, dtype=torch.long, device=device)
        self.seen_steps = 0

    def _batch_first_tensors(self) -> list[torch.Tensor]:
        """Views of every state tensor with the batch axis first."""
        views = [state.movedim(1, 0) for state in self.conv_states]
        views += [state if state.dim() == 3 else state.movedim(1, 0) for state in self.ssm_states]
        return [*views, self.pooled.movedim(1, 0), self.counts.movedim(1, 0)]

    def snapshot(self) -> list[torch.Tensor]:
        return [view.clone() for view in self._batch_first_tensors()]

    def restore_rows(self, snapshot: list[torch.Tensor], rows: torch.Tensor) -> None:
        """Puts back the snapshot's values for the batch rows where `rows` (b,) is True."""
        for view, saved in zip(self._batch_first_tensors(), snapshot, strict=True):
            keep = rows.reshape(-1, *[1] * (view.dim() - 1))
            view.copy_(torch.where(keep, saved, view))


def prepare_cache(model: nn.Module, cache, use_cache, reference: torch.Tensor) -> CoupledMambaCache | None:
    """The cache a forward of `model` (a CoupledMambaModel) continues and updates: the given one, checked against
    reference (b, l, D_m), a new one with `use_cache` (none while checkpointing gradients), or None."""
    if cache is not None:
        if cache.batch_size != reference.shape[0]:
            raise ValueError(f"cache holds {cache.batch_size} sequences, the inputs {reference.shape[0]}")
        return cache
    if not use_cache or (model.gradient_checkpointing and model.training):
        return None
    return CoupledMambaCache(model.config, reference.shape[0], dtype=model.dtype, device=reference.device)


# ------------------------------------------------------------------------------------------------ passes
class _Encoded(NamedTuple):
    """What the coupled layers give the pooling: the final normed output (b, M, l, d) or None when not kept; the
    hidden states after every depth ((b, M, l, d) each) or None; the pooling statistics of the steps (values
    (M, b, d), counts (M, b))."""

    last: torch.Tensor | None
    depth_outputs: list[torch.Tensor] | None
    statistics: tuple[torch.Tensor, torch.Tensor]


def forward_parallel(model: nn.Module, features, masks, cache, keep_all: bool, keep_last: bool) -> _Encoded:
    """All steps through `model`'s (a CoupledMambaModel's) layers in parallel, continuing from `cache` if it has seen
    steps. features: one (b, l, D_m) per modality; masks: one (b, l) bool per modality, or None.

    Without autograd, long sequences go through in pieces (`config.inference_chunk_tokens`), a cache carrying the
    conv windows and states from one to the next; each piece's final output is pooled (and, with `keep_last`,
    written into place) as it comes, so that only the output (b, M, l, d) grows with l, and only if kept.

    In one piece (autograd on), the hidden states kept are the tensors the next layer takes, so gradients reach
    them; where steps padded in every modality were moved first, they are copies put back in order."""
    order = padding_order(masks)  # steps where every modality is padded go first: the states are zero there
    batch, length = features[0].shape[:2]
    pieces = time_pieces(batch, length, model.config.inference_chunk_tokens)
    carrier = cache
    if carrier is None and len(pieces) > 1:
        carrier = CoupledMambaCache(model.config, batch, dtype=model.dtype, device=features[0].device)
    last, statistics, depth_pieces = None, None, []
    for piece in pieces:
        piece_masks = None if masks is None else [_steps_of(mask, piece, order) for mask in masks]
        hidden = _project(model, [_steps_of(f, piece, order) for f in features])
        depth_outputs = [hidden]
        for layer in model.layers:
            hidden = layer(hidden, masks=piece_masks, cache=carrier)
            depth_outputs = [*depth_outputs, hidden] if keep_all else [hidden]
        normed = _final_norms(model, hidden)  #                                              (b, M, l_piece, d)
        statistics = merged_statistics(statistics, normed, piece_masks, model.config.pooling)
        if keep_last:
            last = normed.new_empty(batch, normed.shape[1], length, normed.shape[-1]) if last is None else last
            _put_steps(last, normed, piece, order)
        depth_pieces.append(depth_outputs)
    if cache is not None:
        cache.seen_steps += length
    if not keep_all:
        return _Encoded(last, None, statistics)
    depth_outputs = _joined_pieces(depth_pieces)
    if order is not None:
        inverse = order.argsort(dim=1)
        depth_outputs = [_take_steps(h, inverse, time_dim=2) for h in depth_outputs]
    return _Encoded(last, depth_outputs, statistics)


def _project(model: nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
    """Every modality's features (b, l, D_m) onto the common width, stacked: (b, M, l, d)."""
    projections = model.input_projections.values()
    return torch.stack([projection(f) for projection, f in zip(projections, features, strict=True)], dim=1)


def _final_norms(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The last layer's output (b, M, l, d) → LayerNorm per modality, (b, M, l, d)."""
    return torch.stack([norm(h) for norm, h in zip(model.final_norms.values(), hidden.unbind(1), strict=True)], dim=1)


def time_pieces(batch: int, length: int, budget: int | None) -> list[slice]:
    """Time slices of one parallel pass: the whole sequence, or pieces of budget (`inference_chunk_tokens`) // b
    steps when no gradient is recorded (pieces save memory only when autograd keeps no intermediates)."""
    steps = length if budget is None or torch.is_grad_enabled() else max(1, budget // batch)
    return [slice(start, min(start + steps, length)) for start in range(0, length, steps)]


def forward_steps(model: nn.Module, features, masks, cache, keep_all: bool, keep_last: bool) -> _Encoded:
    """One step at a time from the cache; returns what `forward_parallel` does. A step where every modality is
    padded leaves the cache as it was."""
    hidden = _project(model, features)
    step_is_real = None if masks is None else torch.stack(masks).any(0)  #                          (b, l)
    steps = []
    for t in range(hidden.shape[2]):
        step_hidden = hidden[:, :, t].unbind(1)
        step_masks = None if masks is None else [mask[:, t] for mask in masks]
        skipped = None if step_is_real is None else ~step_is_real[:, t]
        saved = cache.snapshot() if skipped is not None and bool(skipped.any()) else None
        outputs = [step_hidden]
        for layer in model.layers:
            step_hidden = layer.step(*step_hidden, masks=step_masks, cache=cache)
            outputs.append(step_hidden)
        if saved is not None:
            cache.restore_rows(saved, skipped)
        cache.seen_steps += 1
        steps.append(outputs if keep_all else outputs[-1:])
    by_depth = zip(*steps, strict=True)  # per depth, per step, one (b, d) per modality → per depth (b, M, l, d)
    depth_outputs = [torch.stack([torch.stack(step, dim=1) for step in depth], dim=2) for depth in by_depth]
    last = _final_norms(model, depth_outputs[-1])
    statistics = merged_statistics(None, last, masks, model.config.pooling)
    return _Encoded(last if keep_last else None, depth_outputs if keep_all else None, statistics)


def pooled_modalities(statistics, cache: CoupledMambaCache | None, pooling: str, dtype: torch.dtype) -> torch.Tensor:
    """(b, M, d) pooled vectors from the statistics (values (M, b, d), counts (M, b)) of this call's steps; with a
    cache, merged into the cache's: over every step seen."""
    if cache is not None:
        cache.pooled, cache.counts = statistics = merge_statistics(cache.pooled, cache.counts, *statistics, pooling)
    return pooled_vectors(*statistics, pooling).transpose(0, 1).to(dtype)


__all__ = [
    "CoupledMambaCache",
    "forward_parallel",
    "forward_steps",
    "padding_order",
    "pooled_modalities",
    "prepare_cache",
    "time_pieces",
]
