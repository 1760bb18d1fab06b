"""bf16 on CPU: fast where the CPU has bf16 instructions, kept in float32 where it has none.

On a CPU with native bf16 (x86's AVX512-BF16 or AMX-BF16, ARM's BF16 extension) torch's bf16 matmuls and
convolutions run faster than float32's. Without them (an AVX2-only AMD Zen 3 or older Intel) torch emulates them: on
such an EPYC a bf16 `F.linear` ran 8x and a 3x3 `F.conv2d` 15x slower than in float32 (a 2048² matmul at 0.3 GFLOP/s
against ~100), so bf16 *compute* there only costs time. The policy, applied by `float32_unless_native_bf16` to the
forward of every model class of every family (the one seam: accelerate's and Trainer's `--bf16` enter autocast
outside it, and `generate()` calls it each step):

- native bf16: nothing changes. Autocast and bf16 weights compute in bf16; the selective scans take bf16 tensors
  and accumulate in float32 (`ssm_cpu`), the causal conv runs in bf16.
- no native bf16, under `torch.autocast("cpu", dtype=torch.bfloat16)` with float32 weights: the forward runs with
  autocast off and its bf16 tensor inputs widened to float32, so it computes exactly as without autocast.
- no native bf16, bf16 weights (`model.to(torch.bfloat16)`, `from_pretrained(..., dtype=torch.bfloat16)`): the
  weights and activations stay bf16 in memory (half the bytes; outputs and caches in the dtypes they have on any
  CPU), while the slow ops (`WIDENED_FUNCTIONS`: linear, convolutions, norms, matmuls, attention, GELU, softmax)
  compute on float32 copies and round their output back to bf16. A linear over a few rows without autograd (a
  short prompt's prefill, a classifier head) instead streams its bf16 weights once through the C++ kernel's GEMV,
  widened in registers (`mamba_decode.linear_by_rows`): a float32 copy of the weights would cost more than the
  product. Not applied to a training step with gradient checkpointing, whose recomputation runs outside the forward
  (it stays in bf16).

One warning per process names the CPU and the instruction sets it lacks. Other dtypes (float16) are left alone.
"""

from __future__ import annotations

import functools
import platform
import threading
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from transformers.utils import logging

logger = logging.get_logger(__name__)

# The instruction sets that make torch's bf16 matmuls native, by architecture, as `torch.cpu.get_capabilities()` and
# /proc/cpuinfo name them (`flags` on x86, `Features` on ARM).
NATIVE_BF16_FLAGS = {"x86_64": ("avx512_bf16", "amx_bf16"), "arm64": ("bf16", "sve_bf16")}
_ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

# The functions that are slow in emulated bf16 (those that read weights, and GELU and softmax, 3-4x slower than
# float32 here): they compute on float32 copies of their bf16 tensor arguments and hand back their input's dtype.
WIDENED_FUNCTIONS = frozenset({
    F.linear, F.bilinear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d,
    F.layer_norm, F.group_norm, F.batch_norm, F.instance_norm, F.rms_norm, F.scaled_dot_product_attention,
    torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm, torch.mm,
    torch.Tensor.mm, torch.einsum, torch.addmm, torch.baddbmm, F.gelu, F.softmax, torch.softmax, torch.Tensor.softmax,
})  # fmt: skip
_state = threading.local()  # _state.inside: a policed forward is running on this thread (nested models pass through)


def architecture() -> str:
    """ "x86_64", "arm64", or what `platform.machine()` says for another CPU."""
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine)


def cpuinfo_flags(cpuinfo: str) -> set[str]:
    """The feature flags in the text of /proc/cpuinfo (x86's `flags` lines, ARM's `Features` lines)."""
    lines = cpuinfo.splitlines()
    return {flag for line in lines if line.startswith(("flags", "Features")) for flag in line.split(":", 1)[1].split()}


def _cpu_flags() -> set[str]:
    """The CPU's feature flags: torch's own reading (`torch.cpu.get_capabilities` in recent torch, any OS), else
    /proc/cpuinfo's (Linux); empty when neither can tell."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        return {name for name, value in get_capabilities().items() if value is True}
    try:
        return cpuinfo_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        return set()


@functools.cache
def native_bf16_flags() -> tuple[str, ...]:
    """The native bf16 instruction sets this CPU has (of `NATIVE_BF16_FLAGS`), empty when it has none."""
    flags = _cpu_flags()
    return tuple(flag for flag in NATIVE_BF16_FLAGS.get(architecture(), ()) if flag in flags)


def has_native_bf16() -> bool:
    """Whether torch's bf16 matmuls run natively on this CPU (detected once per process)."""
    return bool(native_bf16_flags())


@functools.cache
def _warn_float32_fallback() -> None:
    missing = " or ".join(NATIVE_BF16_FLAGS.get(architecture(), ("a native bf16 instruction set",)))
    logger.warning(
        f"This CPU ({platform.processor() or architecture()}) has no {missing}: torch runs bf16 matmuls and "
        "convolutions here many times slower than float32, so mamba_multimodal models compute in float32 under bf16 "
        "autocast, and run the matmuls and convolutions of bf16 weights in float32 (see README, 'bf16 on CPU')."
    )


class _Float32Compute(TorchFunctionMode):
    """Runs `WIDENED_FUNCTIONS` on float32 copies of their bf16 tensor arguments, their output cast back to the dtype
    of their first tensor argument (the activations: bf16 stays bf16 between ops, as on any CPU). Autograd flows back
    through the copies into bf16 parameters."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in WIDENED_FUNCTIONS:
            return func(*args, **kwargs)
        if func is F.linear:
            output = _linear_by_rows(*args, **kwargs)
            if output is not None:
                return output
        first = next(iter(_tensors(args)), None)
        output = func(*_widened(args), **{key: _widened(value) for key, value in kwargs.items()})
        if first is not None and first.dtype == torch.bfloat16 and isinstance(output, torch.Tensor):
            output = output.to(torch.bfloat16)
        return output


def _linear_by_rows(input, weight, bias=None):
    """F.linear of bf16 tensors over a few rows by the kernel's GEMV, in bf16; None where it does not apply."""
    from .mamba_decode import linear_by_rows  # the kernel's module imports torch's machinery this one sits under

    output = linear_by_rows(input, weight, bias)
    return None if output is None else output.to(input.dtype)


def _tensors(value):
    """The tensors in `value`, also inside lists and tuples (einsum's operands), in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _widened(value):
    """bf16 tensors (also inside a list or tuple) as float32; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype == torch.bfloat16 else value
    if isinstance(value, (list, tuple)):
        return type(value)(_widened(item) for item in value)
    return value


def _weights_dtype_and_device(model: torch.nn.Module) -> tuple[torch.dtype | None, str | None]:
    """The dtype and device type of the model's first floating-point parameter (None, None without one)."""
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    return (None, None) if weight is None else (weight.dtype, weight.device.type)


def _checkpointing(model) -> bool:
    """Whether gradient checkpointing is on (transformers 5.2x renamed the property; the old name warns)."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def float32_unless_native_bf16(forward):
    """Decorates a model's `forward` with the module's policy: on a CPU without native bf16, bf16 autocast is turned
    off inside it (bf16 inputs widened to float32) and bf16 weights are read into float32 ops; on a CPU with it, or for
    float32 weights without autocast, the forward runs unchanged. Nested policed forwards (a VLM's tower and language
    model) run inside the outer one's decision."""

    @functools.wraps(forward)
    def policed_forward(self, *args, **kwargs):
        if getattr(_state, "inside", False) or has_native_bf16():
            return forward(self, *args, **kwargs)
        dtype, device = _weights_dtype_and_device(self)
        autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        bf16_weights = dtype == torch.bfloat16 and not (torch.is_grad_enabled() and _checkpointing(self))
        if device != "cpu" or not (autocast or bf16_weights):
            return forward(self, *args, **kwargs)
        _warn_float32_fallback()
        if not bf16_weights:  # float32 weights: bf16 inputs would meet them in ops that refuse mixed dtypes
            args, kwargs = _widened(args), {key: _widened(value) for key, value in kwargs.items()}
        _state.inside = True
        try:
            with torch.autocast("cpu", enabled=False), _Float32Compute() if bf16_weights else nullcontext():
                return forward(self, *args, **kwargs)
        finally:
            _state.inside = False

    policed_forward.keeps_float32_without_native_bf16 = True  # what the generic test checks for every model class
    return policed_forward


__all__ = [
    "NATIVE_BF16_FLAGS",
    "WIDENED_FUNCTIONS",
    "architecture",
    "float32_unless_native_bf16",
    "has_native_bf16",
    "native_bf16_flags",
]
