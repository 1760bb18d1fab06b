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

import torch
from torch import nn

from . import ssm_cpu
from .cache_utils import cached_states, count_step_in_place, is_recording_past
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


def _plain(module: nn.Module, kind: type) -> bool:
    """Exactly `kind` (a PEFT LoRA layer or a subclass is not) with no forward hooks."""
    return type(module) is kind and not module._forward_hooks and not module._forward_pre_hooks


def _fits(tensor: torch.Tensor | None, dtype: torch.dtype) -> bool:
    """None, or a contiguous CPU tensor of `dtype` whose storage the kernel may read."""
    return tensor is None or (tensor.dtype == dtype and tensor.is_cpu and tensor.is_contiguous())


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _negative_exp(mixer: nn.Module, A_log: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """A = -exp(A_log) in float32 (d_in, n), as the reference step computes it; kept on the mixer (not a parameter
    nor a buffer) until A_log changes: in place (its version) or replaced (another tensor or storage). None when
    A_log is not a CPU tensor of `dtype`."""
    if A_log.dtype != dtype or not A_log.is_cpu:
        return None
    key = (id(A_log), A_log._version, A_log.data_ptr(), A_log.dtype)
    cached = mixer.__dict__.get("_decode_A")
    if cached is None or cached[0] != key:
        cached = (key, -torch.exp(A_log.detach().float()))
        mixer.__dict__["_decode_A"] = cached
    return cached[1]


def _layer_pointers(block, classes, dtype, conv_state, ssm_state) -> list[int | None] | None:
    """The kernel's table row of one block (`DecodeLayer` in ssm_cpu.cpp), or None when the block is not what the
    kernel implements: `classes` (block, norm, mixer) exactly, plain `nn.Linear`/`nn.Conv1d` projections (a PEFT LoRA
    wrapper is not), no forward hooks, every parameter `dtype`. This runs for every layer at every step, so it reads
    the modules' dicts directly (`nn.Module.__getattr__` would cost a good part of a small model's step), and the
    parameters' part of the row is kept on the block and reused while the same parameter tensors sit at the same
    addresses with the same layout and A_log's version is unchanged."""
    norm, mixer = block._modules["norm"], block._modules["mixer"]
    parts = mixer._modules
    conv, linears = parts["conv1d"], (parts["in_proj"], parts["x_proj"], parts["dt_proj"], parts["out_proj"])
    modules = (block, norm, mixer, conv, *linears)
    if (
        (type(block), type(norm), type(mixer)) != classes
        or type(conv) is not nn.Conv1d
        or any(type(linear) is not nn.Linear for linear in linears)
        or any(module._forward_hooks or module._forward_pre_hooks for module in modules)
    ):
        return None
    in_proj, x_proj, dt_proj, out_proj = (linear._parameters for linear in linears)
    own = mixer._parameters
    parameters = (
        norm._parameters["weight"], in_proj["weight"], in_proj["bias"], conv._parameters["weight"],
        conv._parameters["bias"], x_proj["weight"], dt_proj["weight"], dt_proj["bias"], own["A_log"], own["D"],
        out_proj["weight"], out_proj["bias"], x_proj["bias"],
    )  # fmt: skip
    layout = [(p.data_ptr(), p.is_contiguous()) for p in parameters if p is not None]
    key = (classes, dtype, modules, parameters, layout, own["A_log"]._version)
    kept = block.__dict__.get("_decode_row")
    if kept is None or kept[0] != key:
        row = _parameter_row(mixer, parameters, dtype)
        if row is None:
            return None
        kept = (key, row)
        block.__dict__["_decode_row"] = kept
    return [*kept[1], conv_state.data_ptr(), ssm_state.data_ptr()]


def _parameter_row(mixer, parameters, dtype) -> list[int | None] | None:
    """The parameters' pointers of a block's table row, in `DecodeLayer`'s order (A_log's place holds A in float32),
    or None where the kernel does not apply: x_proj with a bias, dt_proj without one, a tensor off the CPU, not
    contiguous or not `dtype`."""
    *kernel_parameters, x_proj_bias = parameters
    if x_proj_bias is not None or kernel_parameters[7] is None:
        return None
    kernel_parameters[8] = _negative_exp(mixer, kernel_parameters[8], dtype)
    if kernel_parameters[8] is None:
        return None
    pointers = []
    for index, parameter in enumerate(kernel_parameters):
        if parameter is None:
            pointers.append(None)
        elif parameter.is_cpu and parameter.is_contiguous() and (index == 8 or parameter.dtype == dtype):
            pointers.append(parameter.data_ptr())
        else:
            return None
    return pointers


def fused_decode_plan(model, classes, inputs_embeds: torch.Tensor, cache, output_hidden_states: bool) -> list | None:
    """The pointer table with which `decode_stack` runs this forward of `model` (a `MambaModel` whose blocks,
    norms and mixers are exactly `classes`), or None where the reference step runs instead. The fused step runs one
    token per row on CPU without autograd, with a cache holding every layer's state that the reference would update
    in place (not a recording cache: assisted decoding's rollback keeps the reference), plain modules, one weight
    dtype of `FUSED_DTYPES`, no hidden states asked for, and the kernel built."""
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
    table = []
    for block in model.layers:
        mixer = block._modules["mixer"]
        conv_state, ssm_state = cached_states(cache, mixer.layer_idx)
        if (
            conv_state is None
            or is_recording_past(cache, mixer.layer_idx)
            or conv_state.shape != (batch, mixer.intermediate_size, mixer.conv_kernel_size)
            or ssm_state.shape != (batch, mixer.intermediate_size, mixer.ssm_state_size)
            or not (_fits(conv_state, dtype) and _fits(ssm_state, torch.float32))
        ):
            return None
        row = _layer_pointers(block, classes, dtype, conv_state, ssm_state)
        if row is None:
            return None
        table += row
    return table


def decode_stack(model, table: list, inputs_embeds: torch.Tensor, cache, attention_mask) -> torch.Tensor:
    """The final norm's output (b, 1, d) after one step of every block of `model` from inputs_embeds (b, 1, d),
    updating the cache in place; float32 when `residual_in_fp32`, else the weights' dtype (as the reference).
    table: `fused_decode_plan`'s, for these inputs. attention_mask: (b, 1) with 0 for a padded step, or None."""
    config, first = model.config, model.layers[0].mixer
    batch, dtype = inputs_embeds.shape[0], inputs_embeds.dtype
    kept = model.__dict__.get("_decode_pointers")  # a generation's steps pass the same table: one ctypes array
    if kept is None or kept[0] != table:
        kept = (table, (ctypes.c_void_p * len(table))(*table))
        model.__dict__["_decode_pointers"] = kept
    pointers = kept[1]
    hidden = inputs_embeds.reshape(batch, -1).to(torch.float32, copy=True)  # the residual stream, updated in place
    out = torch.empty_like(hidden)
    mask = None if attention_mask is None else attention_mask.reshape(batch).to(torch.float32).contiguous()
    ssm_cpu.load().mamba_decode_step(
        pointers, len(model.layers), model.norm_f.weight.data_ptr(), int(dtype == torch.bfloat16),
        ssm_cpu._ptr(mask), ssm_cpu._ptr(hidden), ssm_cpu._ptr(out), batch, config.hidden_size,
        first.intermediate_size, first.ssm_state_size, first.time_step_rank, first.conv_kernel_size,
        model.norm_f.variance_epsilon, int(bool(config.residual_in_fp32)), ssm_cpu._threads(),
    )  # fmt: skip
    for block in model.layers:
        count_step_in_place(cache, block.mixer.layer_idx)
    out_dtype = torch.float32 if config.residual_in_fp32 else dtype
    return out.to(out_dtype).unsqueeze(1)


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
    "decode_stack",
    "fused_decode_plan",
    "fused_linear",
    "linear_by_rows",
    "without_function_modes",
]
