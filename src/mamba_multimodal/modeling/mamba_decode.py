"""The fused CPU decode step of `MambaModel` (and so of `MambaForCausalLM` and VLM-Mamba's language model).

A decode step (one new token per row, the recurrent cache holding every layer's state) reads every weight once for a
few multiply-adds each: its speed is the speed at which the weights stream from memory, plus whatever runs between
the matrix-vector products. `decode_stack` runs the whole stack of blocks and the final norm in ONE call of the C++
kernel (`ssm_cpu.cpp`'s `mamba_decode_step`, built with the scans), on the module's own parameter storage (float32,
or bfloat16 widened to float32 in registers; float32 accumulation and state), updating the cache's conv windows and
states in place as the reference step does; `fused_linear` runs the LM head's product in the same way.

The reference is mamba.py's own step (`MambaBlock` → `MambaMixer` with `_steps_in_place`), which runs whenever the
fused step does not apply; `fused_decode_plan` says when it does. With bfloat16 weights the kernel rounds to
bfloat16 wherever the reference holds a bfloat16 tensor, so both give the same tokens.

Glossary: b batch, d hidden size, d_in intermediate size, n state size, k conv kernel.
"""

from __future__ import annotations

import ctypes
import operator

import torch
from torch import nn
from transformers import cache_utils as transformers_cache
from transformers.cache_utils import Cache

from . import ssm_cpu
from .cache_utils import (
    COUNTS_RECURRENT_TOKENS,
    cached_states,
    count_step_in_place,
    current_generation_call,
    is_recording_past,
)
from .ssm import _device_type  # the dispatch's device seam (tests/cuda_standin.py runs CPU tensors as "cuda")

FUSED_DTYPES = (torch.float32, torch.bfloat16)  # the weight storages the kernel reads
FUSED_BACKENDS = ("auto", "cpu")  # scan_backend values that let the fused step run ("pytorch" forces the reference)
MAX_HEAD_ROWS = 16  # a GEMV streams the weights once per call; more rows (a prefill's logits) are torch's GEMM


def without_function_modes():
    """A context in which torch function modes (`precision`'s float32 compute for bf16 weights on a CPU without
    native bf16) do not see torch calls: the fused step's own calls (pointer and layout checks, conversions) need none
    of them, and a mode's Python hook on each of its ~300 tensor accesses a step cost ~10% of a 130M model's step."""
    return torch._C.DisableTorchFunction()


def _global_hooks() -> bool:
    """Whether a global module hook is registered (it would see no module call inside the fused step)."""
    modules = nn.modules.module
    hook_tables = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_forward_hooks_always_called")
    return any(getattr(modules, name, None) for name in hook_tables)


def has_forward_hooks(module: nn.Module) -> bool:
    """Whether `module` has forward (pre-)hooks of its own: a step that skips its call would not run them."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _plain(module: nn.Module, kind: type) -> bool:
    """Exactly `kind` (a PEFT LoRA layer or a subclass is not) with no forward hooks."""
    return type(module) is kind and not has_forward_hooks(module)


def _fits(tensor: torch.Tensor | None, dtype: torch.dtype) -> bool:
    """None, or a contiguous CPU tensor of `dtype` whose storage the kernel may read."""
    return tensor is None or (tensor.dtype == dtype and tensor.is_cpu and tensor.is_contiguous())


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


_DATA_PTR, _IS_CONTIGUOUS = torch.Tensor.data_ptr, torch.Tensor.is_contiguous
_DTYPE, _VERSION = operator.attrgetter("dtype"), operator.attrgetter("_version")
_HOOKS, _PRE_HOOKS = operator.attrgetter("_forward_hooks"), operator.attrgetter("_forward_pre_hooks")
_SHAPE, _COUNTER = operator.attrgetter("shape"), operator.attrgetter("cumulative_length_linear")
_PREVIOUS, _FIRST_STATE = operator.attrgetter("has_previous_state"), operator.itemgetter(0)  # one state a Mamba layer
_BLOCK_PARTS = ("norm", "mixer")
_MIXER_PARTS = ("conv1d", "in_proj", "x_proj", "dt_proj", "out_proj")
# The parameters the kernel reads of each module of `_block_modules`, in its order (block, norm, mixer, conv1d and
# the four projections).
_KERNEL_PARAMETERS = ((), ("weight",), ("A_log", "D")) + (("weight", "bias"),) * 5


class StackWeights:
    """The parameters' part of the kernel's table for a stack of blocks (the first 12 of `DecodeLayer`'s pointers
    per block; A_log's place holds A = -exp(A_log) in float32), and what it was read from, so that a step can tell
    in a few C-level passes whether it still holds: the same block objects, whose norm, mixer and projections are
    the same objects (a PEFT LoRA wrapper or a new Linear replaces one) of the same classes without forward hooks,
    whose parameters are the same tensors at the same addresses, contiguous, of the same dtype, with A_log unchanged
    (A is a copy, made here; an in-place edit through `.data`, which autograd does not count either, is not seen).
    The check costs ~25 µs for 8 layers (a cache-cold rebuild every step cost a small model ~9% of its token):
    inside generate() it runs once per call (`cache_utils.generation_call`)."""

    def __init__(self, layers: nn.ModuleList, classes: tuple[type, type, type], dtype: torch.dtype):
        self.layers, self.classes, self.dtype = layers, classes, dtype
        self.blocks = list(layers)
        self.mixers = [block._modules["mixer"] for block in self.blocks]
        self.checked_in = None  # the generate() call in which `holds` last passed (or this was built)
        rows = [_parameter_row(block, classes, dtype) for block in self.blocks]
        if any(row is None for row in rows):  # the reference step runs: nothing to check later
            self.rows = None
            return
        self.rows = [pointers for pointers, _ in rows]
        self.negative_exp_A = [A for _, A in rows]  # the float32 copies the rows point into, kept alive here
        # (dict, key, value) triples whose entries must keep their objects: submodules, then parameters
        self.slots = [(layers._modules, name, block) for name, block in layers._modules.items()]
        self.slots += [(block._modules, name, block._modules[name]) for block in self.blocks for name in _BLOCK_PARTS]
        self.slots += [(mixer._modules, name, mixer._modules[name]) for mixer in self.mixers for name in _MIXER_PARTS]
        self.modules = [module for block in self.blocks for module in _block_modules(block)]
        self.slots += [
            (module._parameters, name, module._parameters[name])
            for block in self.blocks
            for module, names in zip(_block_modules(block), _KERNEL_PARAMETERS, strict=True)
            for name in names
        ]
        self.dicts, self.keys, self.values = (list(column) for column in zip(*self.slots, strict=True))
        self.types = tuple(map(type, self.modules))
        self.tensors = [value for value in self.values if isinstance(value, torch.Tensor)]
        self.pointers, self.dtypes = tuple(map(_DATA_PTR, self.tensors)), tuple(map(_DTYPE, self.tensors))
        self.A_logs = [mixer._parameters["A_log"] for mixer in self.mixers]
        self.versions = tuple(map(_VERSION, self.A_logs))

    def holds(self, layers: nn.ModuleList, classes: tuple[type, type, type], dtype: torch.dtype, call=None) -> bool:
        """Whether the table still describes `layers`' weights for a step in `dtype` with these `classes`; within
        the generate() call (`call`, `cache_utils.current_generation_call`) in which it last held, without looking
        again at the modules and parameters."""
        if self.rows is None or self.layers is not layers or self.classes != classes or self.dtype != dtype:
            return False
        if call is not None and self.checked_in is call:
            return True
        try:
            current = list(map(operator.getitem, self.dicts, self.keys))
        except KeyError:  # a submodule or parameter deleted
            return False
        return (
            len(layers._modules) == len(self.blocks)
            and all(map(operator.is_, current, self.values))
            and tuple(map(type, self.modules)) == self.types
            and not any(map(len, map(_HOOKS, self.modules)))
            and not any(map(len, map(_PRE_HOOKS, self.modules)))
            and tuple(map(_DATA_PTR, self.tensors)) == self.pointers
            and tuple(map(_DTYPE, self.tensors)) == self.dtypes
            and all(map(_IS_CONTIGUOUS, self.tensors))
            and tuple(map(_VERSION, self.A_logs)) == self.versions
        )


class CacheStates:
    """The plan of a cache's fused steps: the kernel's table, `StackWeights`' rows each followed by its block's conv
    window and scan state (the last 2 of `DecodeLayer`'s pointers), as a ctypes array (`pointers`; None where a state
    does not fit: the reference step runs).
    Kept on the cache (`KEY`), with what it was read from, so that the next step can tell in a few C-level passes
    whether it still holds: the same weights' table, the same layer objects at the mixers' indices, each with a
    previous state and not recording (assisted decoding's rollback), holding the same state tensors (beam search's
    reordering and a crop put new ones) at the same addresses, of the same shapes, dtypes and contiguity, and the same
    token counters. Reading and checking every layer's states again at each step was ~25 us of a demo-LM token."""

    KEY = "_mamba_decode_states"

    def __init__(self, cache, weights: StackWeights, batch: int, dtype: torch.dtype):
        self.weights, self.batch, self.dtype, self.pointers = weights, batch, dtype, None
        self.indices = [mixer.layer_idx for mixer in weights.mixers]
        states = [cached_states(cache, index) for index in self.indices]
        for (conv_state, ssm_state), mixer in zip(states, weights.mixers, strict=True):
            if (
                conv_state is None
                or is_recording_past(cache, mixer.layer_idx)
                or conv_state.shape != (batch, mixer.intermediate_size, mixer.conv_kernel_size)
                or ssm_state.shape != (batch, mixer.intermediate_size, mixer.ssm_state_size)
                or not (_fits(conv_state, dtype) and _fits(ssm_state, torch.float32))
            ):
                return
        self.layers = [cache.layers[index] for index in self.indices]
        self.tensors = [tensor for pair in states for tensor in pair]  # conv window, state; per layer
        self.addresses, self.shapes = tuple(map(_DATA_PTR, self.tensors)), tuple(map(_SHAPE, self.tensors))
        self.dtypes = tuple(map(_DTYPE, self.tensors))
        self.counters = _stock_counters(cache, self.layers)
        table = [
            pointer
            for row, (conv_state, ssm_state) in zip(weights.rows, states, strict=True)
            for pointer in (*row, conv_state.data_ptr(), ssm_state.data_ptr())
        ]
        self.pointers = (ctypes.c_void_p * len(table))(*table)

    def holds(self, cache, weights: StackWeights, batch: int, dtype: torch.dtype) -> bool:
        if weights is not self.weights or batch != self.batch or dtype != self.dtype:
            return False
        try:
            layers = list(map(cache.layers.__getitem__, self.indices))
        except IndexError:
            return False
        return (
            all(map(operator.is_, layers, self.layers))
            and all(map(_FIRST_STATE, map(_PREVIOUS, layers)))
            and not any(getattr(layer, "record_past", False) for layer in layers)
            and all(map(operator.is_, _layer_states(layers), self.tensors))
            and tuple(map(_DATA_PTR, self.tensors)) == self.addresses
            and tuple(map(_SHAPE, self.tensors)) == self.shapes
            and tuple(map(_DTYPE, self.tensors)) == self.dtypes
            and all(map(_IS_CONTIGUOUS, self.tensors))
            and (self.counters is None or all(map(operator.is_, map(_COUNTER, layers), self.counters)))
        )

    def count_step(self, cache) -> None:
        """Counts the step's token in every layer (`cache_utils.count_step_in_place`): one call where the counters
        are transformers' own."""
        if self.counters is not None:
            torch._foreach_add_(self.counters, 1)
            return
        for index in self.indices:
            count_step_in_place(cache, index)


def _layer_states(layers) -> list[torch.Tensor]:
    """Each layer's conv window and recurrent state, in `CacheStates.tensors`' order."""
    return [state for layer in layers for state in (layer.conv_states[0], layer.recurrent_states[0])]


def _stock_counters(cache, layers) -> list[torch.Tensor] | None:
    """The layers' token counters (`cumulative_length_linear`) where counting a step is transformers' own
    `increase_count`, a +1 on each (5.25+), so that a step adds to all of them in one call; else None."""
    if not COUNTS_RECURRENT_TOKENS or type(cache).increase_count is not Cache.increase_count:
        return None
    counters = [getattr(layer, "cumulative_length_linear", None) for layer in layers]
    stock_count = transformers_cache.LinearAttentionCacheLayerMixin.increase_count
    stock = all(getattr(type(layer), "increase_count", None) is stock_count for layer in layers)
    return counters if stock and all(isinstance(counter, torch.Tensor) for counter in counters) else None


def _block_modules(block: nn.Module) -> tuple[nn.Module, ...]:
    """The modules of a block the kernel reads: block, norm, mixer, conv1d, in_proj, x_proj, dt_proj, out_proj."""
    mixer = block._modules["mixer"]
    return (block, block._modules["norm"], mixer, *(mixer._modules[name] for name in _MIXER_PARTS))


def _negative_exp(A_log: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """A = -exp(A_log) in float32 (d_in, n), as the reference step computes it; None when A_log is not a CPU tensor
    of `dtype`."""
    if A_log.dtype != dtype or not A_log.is_cpu:
        return None
    return -torch.exp(A_log.detach().float())


def _parameter_row(block, classes, dtype) -> tuple[list[int | None], torch.Tensor] | None:
    """(the parameters' pointers of a block's table row in `DecodeLayer`'s order, A = -exp(A_log) whose copy A_log's
    place points into), or None where the block is not what the kernel implements: `classes` (block, norm, mixer)
    exactly, plain `nn.Conv1d`/`nn.Linear` projections (a PEFT LoRA wrapper is not), no forward hooks, x_proj
    without a bias and dt_proj with one, every parameter a contiguous CPU tensor of `dtype`."""
    modules = _block_modules(block)
    _, norm, mixer, conv, in_proj, x_proj, dt_proj, out_proj = modules
    if (
        (type(block), type(norm), type(mixer)) != classes
        or type(conv) is not nn.Conv1d
        or any(type(linear) is not nn.Linear for linear in (in_proj, x_proj, dt_proj, out_proj))
        or any(map(has_forward_hooks, modules))
        or x_proj.bias is not None
        or dt_proj.bias is None
    ):
        return None
    A = _negative_exp(mixer._parameters["A_log"], dtype)
    parameters = (
        norm.weight, in_proj.weight, in_proj.bias, conv.weight, conv.bias, x_proj.weight, dt_proj.weight,
        dt_proj.bias, A, mixer._parameters["D"], out_proj.weight, out_proj.bias,
    )  # fmt: skip
    if A is None or not all(_fits(parameter, dtype) for parameter in parameters if parameter is not A):
        return None
    return [_pointer(parameter) for parameter in parameters], A


def fused_decode_plan(model, classes, inputs_embeds: torch.Tensor, cache, output_hidden_states: bool
                      ) -> CacheStates | None:  # fmt: skip
    """The plan (the kernel's table) with which `decode_stack` runs this forward of `model` (a `MambaModel` whose
    blocks, norms and mixers are exactly `classes`), or None where the reference step runs instead. The fused step
    runs one token per row on CPU without autograd, with a cache holding every layer's state that the reference
    would update in place (not a recording cache: assisted decoding's rollback keeps the reference), plain modules,
    one weight dtype of `FUSED_DTYPES`, no hidden states asked for, and the kernel built. The parameters' part of the
    table is kept on the model (`StackWeights`), the plan on the cache (`CacheStates`), each reused while it holds."""
    dtype, batch = inputs_embeds.dtype, inputs_embeds.shape[0]
    if (
        cache is None
        or output_hidden_states
        or inputs_embeds.shape[1] != 1
        or torch.is_grad_enabled()
        or _device_type(inputs_embeds) != "cpu"
        or dtype not in FUSED_DTYPES
        or getattr(model.config, "scan_backend", "auto") not in FUSED_BACKENDS
        or not _fits(model.norm_f.weight, dtype)
        or _global_hooks()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or ssm_cpu.load() is None
    ):
        return None
    weights, call = model.__dict__.get("_decode_weights"), current_generation_call()
    if weights is None or not weights.holds(model.layers, classes, dtype, call):
        weights = StackWeights(model.layers, classes, dtype)
        model.__dict__["_decode_weights"] = weights
    weights.checked_in = call
    if weights.rows is None:
        return None
    states = cache.__dict__.get(CacheStates.KEY)
    if states is None or not states.holds(cache, weights, batch, dtype):
        states = CacheStates(cache, weights, batch, dtype)
        if states.pointers is None:
            return None
        cache.__dict__[CacheStates.KEY] = states
    return states


def decode_stack(model, plan: CacheStates, inputs_embeds: torch.Tensor, cache, attention_mask) -> torch.Tensor:
    """The final norm's output (b, 1, d) after one step of every block of `model` from inputs_embeds (b, 1, d),
    updating the cache in place; float32 when `residual_in_fp32`, else the weights' dtype (as the reference).
    plan: `fused_decode_plan`'s, for these inputs. attention_mask: (b, 1) with 0 for a padded step, or None."""
    out = _run_step(model, plan, inputs_embeds, cache, attention_mask, None)
    out_dtype = torch.float32 if model.config.residual_in_fp32 else inputs_embeds.dtype
    return out.to(out_dtype).unsqueeze(1)


def decode_logits(model, plan: CacheStates, inputs_embeds: torch.Tensor, cache, attention_mask, head: nn.Linear):
    """float32 logits (b, 1, vocab) of `head` (`head_fits`) after one step of `model`, as `decode_stack`, in the same
    call of the kernel: its rows read right after the last block's (one pass of the threads, no return to Python).
    As `head_logits` computes them: from the final norm's output in the weights' dtype, rounded to bfloat16 with
    bfloat16 weights."""
    batch = inputs_embeds.shape[0]
    logits = torch.empty(batch, head.weight.shape[0], dtype=torch.float32)
    _run_step(model, plan, inputs_embeds, cache, attention_mask, (head, logits))
    return logits.unsqueeze(1)


def head_fits(head: nn.Module, dtype: torch.dtype, hidden_size: int) -> bool:
    """Whether the kernel can run `head` in the decode step's call: a plain `nn.Linear` (hidden_size → vocab)
    without hooks, weight and bias contiguous CPU tensors of the step's `dtype`."""
    if not _plain(head, nn.Linear):
        return False
    weight, bias = head._parameters["weight"], head._parameters["bias"]
    return weight.shape[1] == hidden_size and _fits(weight, dtype) and _fits(bias, dtype)


def _run_step(model, plan: CacheStates, inputs_embeds, cache, attention_mask, head) -> torch.Tensor:
    """One call of the kernel's decode step (`mamba_decode_step`); returns the final norm's output (b, d) in
    float32. head: (nn.Linear, logits (b, vocab) float32 to fill) or None."""
    config, first, layers = model.config, plan.weights.mixers[0], len(plan.weights.mixers)
    batch, dtype = inputs_embeds.shape[0], inputs_embeds.dtype
    hidden = inputs_embeds.reshape(batch, -1).to(torch.float32, copy=True)  # the residual stream, updated in place
    out = torch.empty_like(hidden)
    mask = None if attention_mask is None else attention_mask.reshape(batch).to(torch.float32).contiguous()
    head_weight, head_bias, vocab, logits = None, None, 0, None
    if head is not None:
        linear, logits = head
        head_weight, head_bias, vocab = linear.weight, linear.bias, linear.weight.shape[0]
    ssm_cpu.load().mamba_decode_step(
        plan.pointers, layers, model.norm_f.weight.data_ptr(), int(dtype == torch.bfloat16), _pointer(mask),
        hidden.data_ptr(), out.data_ptr(), batch, config.hidden_size, first.intermediate_size, first.ssm_state_size,
        first.time_step_rank, first.conv_kernel_size, model.norm_f.variance_epsilon, int(bool(config.residual_in_fp32)),
        _pointer(head_weight), _pointer(head_bias), vocab, _pointer(logits), ssm_cpu._threads(),
    )  # fmt: skip
    plan.count_step(cache)
    return out


def fused_linear(linear: nn.Module, inputs: torch.Tensor, backend: str = "auto") -> torch.Tensor | None:
    """linear(inputs) (..., out) in float32 by the kernel's GEMV, or None where torch's product runs instead: with
    autograd, on other devices, dtypes or modules than a plain `nn.Linear` of `FUSED_DTYPES`, for more than
    `MAX_HEAD_ROWS` rows, or without the kernel. inputs: (..., in) in the weights' dtype. With bfloat16 weights the
    result is rounded to bfloat16, as torch's bfloat16 product is, and returned in float32."""
    if backend not in FUSED_BACKENDS or torch.is_grad_enabled() or not _plain(linear, nn.Linear) or _global_hooks():
        return None
    return linear_by_rows(inputs, linear.weight, linear.bias)


def linear_by_rows(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """F.linear(inputs, weight, bias) (..., out) in float32 by the kernel's GEMV (each weight row streamed once for
    all rows of inputs), or None where it does not apply: autograd on any argument, other devices or dtypes than
    `FUSED_DTYPES` (inputs in the weights' dtype), non-contiguous weights, more than `MAX_HEAD_ROWS` rows, tracing,
    or no kernel. inputs: (..., in). With bfloat16 weights the result is rounded to bfloat16 (as torch's product)."""
    rows = inputs.numel() // max(inputs.shape[-1], 1)
    if (
        weight.dtype not in FUSED_DTYPES
        or inputs.dtype != weight.dtype
        or weight.dim() != 2
        or inputs.shape[-1] != weight.shape[1]
        or not 0 < rows <= MAX_HEAD_ROWS
        or not (_fits(weight, weight.dtype) and _fits(bias, weight.dtype))
        or (bias is not None and bias.shape != weight.shape[:1])
        or _device_type(inputs) != "cpu"
        or (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (inputs, weight, bias)))
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    ):
        return None
    library = ssm_cpu.load()
    if library is None:
        return None
    x = inputs.reshape(rows, -1).to(torch.float32, copy=True)
    out = torch.empty(rows, weight.shape[0], dtype=torch.float32)
    library.linear_rows(
        weight.data_ptr(), _pointer(bias), int(weight.dtype == torch.bfloat16), ssm_cpu._ptr(x),
        ssm_cpu._ptr(out), rows, weight.shape[1], weight.shape[0], ssm_cpu._threads(),
    )  # fmt: skip
    return out.reshape(*inputs.shape[:-1], weight.shape[0])


__all__ = [
    "FUSED_BACKENDS",
    "FUSED_DTYPES",
    "decode_logits",
    "decode_stack",
    "fused_decode_plan",
    "fused_linear",
    "has_forward_hooks",
    "head_fits",
    "linear_by_rows",
    "without_function_modes",
]
