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
  weights stay bf16 in memory (half the bytes) and the outputs and caches come in the dtypes they have on any CPU.
  A forward that keeps no cache (a vision backbone, a classifier) computes in float32 throughout and rounds its
  outputs to bf16: on float32 copies of the weights made when it starts (float32's work plus one widening of each
  weight; up to `SWAP_LIMIT_BYTES` of copies), else widening each weight as its op runs. The Mamba LM and
  VLM-Mamba (but for its vision tower, which computes as it does alone), and any forward that keeps a cache, keep
  bf16 activations: the slow ops (`WIDENED_FUNCTIONS`:
  linear, convolutions, norms, matmuls, attention, GELU, softmax) compute on float32 copies of their arguments and
  round their output back to bf16, the rounding the fused bf16 decode step reproduces. There, a linear over a few
  rows without autograd (a short prompt's prefill, a head) streams its bf16 weights once through the C++ kernel's
  GEMV, widened in registers (`mamba_decode.linear_by_rows`): a float32 copy of the weights would cost more than
  the product. Not applied to a training step with gradient checkpointing, whose recomputation runs outside the
  forward (it stays in bf16).

One warning per process names the CPU and the instruction sets it lacks. Other dtypes (float16) are left alone.
"""

from __future__ import annotations

import functools
import platform
import threading
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from transformers.utils import ModelOutput, logging

from .cache_utils import LEGACY_CACHE_NAMES, first_parameter
from .ssm import _device_type  # the device seam of every dispatch (tests/cuda_standin.py reads CPU tensors as "cuda")

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
# _state.inside: a policed forward is running on this thread (nested models run inside its decision); _state.rounding:
# its `_Float32Compute` when it rounds activations to bf16 per op (a nested model that keeps no cache leaves it).
_state = threading.local()
# Models whose float32 weights take at most this run a bf16-weight forward on float32 copies made all at once; larger
# ones widen op by op (`float32_unless_native_bf16`). Measured here, against float32: 2.3 MB (MambaVision's test
# preset) 1.02x at once, 0.85x op by op; 127 MB (MambaVision-T) 0.84x at once (33,000 page faults a forward), 0.91x op
# by op (7,900).
SWAP_LIMIT_BYTES = 32 * 2**20
_SWAP = threading.Lock()  # held while a forward runs on swapped float32 weights (`_float32_weights`)


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
def bf16_attention_in_float32() -> bool:
    """Whether bf16 attention runs faster in float32 on this CPU: an x86 CPU without AMX-BF16. torch's CPU flash
    attention reaches its bf16 speed through AMX; on a Zen 5 EPYC (AVX512-BF16, no AMX; 2 threads) its bf16 forward
    took 1.1-2.9x and forward + backward 1.6-14x the float32 time at MambaVision's window shapes, where torch's
    bf16 matmuls run 2x faster than float32. (A CPU without native bf16 computes in float32 anyway.)"""
    return architecture() == "x86_64" and "amx_bf16" not in _cpu_flags()


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs) -> torch.Tensor:
    """`F.scaled_dot_product_attention`, computed on float32 copies where its bf16 kernel is the slower one
    (`bf16_attention_in_float32`): for bf16 CPU tensors, and under CPU bf16 autocast (which would run it in bf16).
    Returns what torch's would: bf16 in both cases."""
    bf16_autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if (
        query.device.type != "cpu"
        or not (bf16_autocast or query.dtype == torch.bfloat16)
        or not bf16_attention_in_float32()
    ):
        return F.scaled_dot_product_attention(query, key, value, **kwargs)
    with torch.autocast("cpu", enabled=False):
        attended = F.scaled_dot_product_attention(query.float(), key.float(), value.float(), **kwargs)
    return attended.to(torch.bfloat16)


@functools.cache
def _warn_float32_fallback() -> None:
    missing = " or ".join(NATIVE_BF16_FLAGS.get(architecture(), ("a native bf16 instruction set",)))
    logger.warning(
        f"This CPU ({platform.processor() or architecture()}) has no {missing}: torch runs bf16 matmuls and "
        "convolutions here many times slower than float32, so mamba_multimodal models compute in float32 under bf16 "
        "autocast, and run the matmuls and convolutions of bf16 weights in float32 (see README, 'bf16 on CPU')."
    )


class _Float32Compute(TorchFunctionMode):
    """Runs `WIDENED_FUNCTIONS` on float32 copies of their bf16 tensor arguments. Their output is cast back to the
    dtype of their first tensor argument (the activations: bf16 stays bf16 between ops, as on any CPU), or, with
    `float32_activations`, left in float32, so that the activations stay float32 between ops and are never narrowed
    and widened again (the caller narrows the forward's outputs). Autograd flows back through the copies into bf16
    parameters."""

    def __init__(self, float32_activations: bool = False):
        super().__init__()
        self.float32_activations = float32_activations

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in WIDENED_FUNCTIONS:
            return func(*args, **kwargs)
        first = next(iter(_tensors(args)), None)
        # The kernel's GEMV serves the rounding path's bf16 linears over a few rows; float32 activations get torch's
        # product (a nested tower on swapped float32 weights computes exactly as it does alone).
        by_rows = func is F.linear and not self.float32_activations
        output = _linear_by_rows(*args, **kwargs) if by_rows else None
        if output is None:
            output = func(*_widened(args), **_widened(kwargs))
        narrow = not self.float32_activations and first is not None and first.dtype == torch.bfloat16
        return output.to(torch.bfloat16) if narrow and isinstance(output, torch.Tensor) else output


def _linear_by_rows(input, weight, bias=None):
    """F.linear of a bf16 weight over a few rows by the kernel's GEMV, in float32; None where it does not apply."""
    # Imported here, not at the top: transformers' remote-code loader copies a model's files by their `from .x import`
    # lines, so the import must be this form; and it must be looked up at call time (tests count its calls).
    from .mamba_decode import linear_by_rows

    return linear_by_rows(input, weight, bias)


def _tensors(value):
    """The tensors in `value`, also inside lists and tuples (einsum's operands), in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _widened(value):
    """bf16 tensors (also inside a list, a tuple or a plain dict) as float32; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype == torch.bfloat16 else value
    if isinstance(value, (list, tuple)):
        return type(value)(_widened(item) for item in value)
    if type(value) is dict:  # keyword arguments; a ModelOutput (a dict subclass) passes as it is
        return {key: _widened(item) for key, item in value.items()}
    return value


def _weights_dtype_and_device(model: torch.nn.Module) -> tuple[torch.dtype | None, str | None]:
    """The dtype and device type of the model's first floating-point parameter (None, None without one)."""
    weight = first_parameter(model, floating=True)
    return (None, None) if weight is None else (weight.dtype, _device_type(weight))


def _checkpointing(model) -> bool:
    """Whether gradient checkpointing is on (transformers 5.2x renamed the property; the old name warns)."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def _narrowed(output):
    """The forward's output with its float32 tensors as bf16 (inside ModelOutputs, tuples and lists too)."""
    if isinstance(output, torch.Tensor):
        return output.to(torch.bfloat16) if output.dtype == torch.float32 else output
    if isinstance(output, ModelOutput):
        for key, value in output.items():
            output[key] = _narrowed(value)
        return output
    if isinstance(output, (list, tuple)):
        return type(output)(_narrowed(item) for item in output)
    return output


def _bf16_slots(model: torch.nn.Module) -> list[tuple[dict, str, torch.Tensor, bool]]:
    """(store, name, tensor, written back) for every bf16 parameter and buffer of the model: the `_parameters` or
    `_buffers` dict that holds it, and whether `_float32_weights` writes it back (a buffer of a module in training
    mode)."""
    return [
        (store, name, tensor, store is module._buffers and module.training)
        for module in model.modules() for store in (module._parameters, module._buffers)
        for name, tensor in store.items() if tensor is not None and tensor.dtype == torch.bfloat16
    ]  # fmt: skip


def _float32_bytes(slots) -> int:
    """The bytes of float32 copies of the tensors of `_bf16_slots` (a tied weight once)."""
    return 4 * sum({id(tensor): tensor.numel() for _, _, tensor, _ in slots}.values())


@contextmanager
def _float32_weights(slots):
    """Swaps every bf16 parameter and buffer of a model (its `_bf16_slots`) for a float32 copy while the block runs
    (one copy per tensor: tied weights stay tied). The copies are differentiable, so gradients reach the bf16
    parameters. The buffers of modules in training mode are written back, for those the forward updates in place
    (BatchNorm's running statistics); inference tensors keep no version counter that would tell which did."""
    copies: dict[int, torch.Tensor] = {}
    for store, name, tensor, _ in slots:
        store[name] = copies.setdefault(id(tensor), tensor.float())
    try:
        yield
    finally:
        for store, name, tensor, written_back in slots:
            copy, store[name] = store[name], tensor
            if written_back:  # exact where the forward left it alone (bf16 -> float32 -> bf16)
                with torch.no_grad():
                    tensor.copy_(copy)


def _keeps_bf16_activations(model, kwargs) -> bool:
    """Whether the forward rounds activations to bf16 between ops: the model class asks for it, or a cache is kept
    (`use_cache=True`) or continued (a cache argument)."""
    cache_given = any(kwargs.get(name) is not None for name in ("cache", *LEGACY_CACHE_NAMES))
    return getattr(model, "keeps_bf16_activations", False) or bool(kwargs.get("use_cache")) or cache_given


def _in_float32(forward, model, args, kwargs):
    """The forward of a model with bf16 weights, computed with float32 activations throughout: on its weights swapped
    to float32 copies where they fit `SWAP_LIMIT_BYTES` and no other thread holds swapped ones, else widened op by op.
    Its outputs are narrowed to bf16 once."""
    slots = _bf16_slots(model)
    swap = _float32_bytes(slots) <= SWAP_LIMIT_BYTES and _SWAP.acquire(blocking=False)
    try:
        args, kwargs = _widened(args), _widened(kwargs)
        with _float32_weights(slots) if swap else _Float32Compute(float32_activations=True):
            output = forward(model, *args, **kwargs)
    finally:
        if swap:
            _SWAP.release()
    return _narrowed(output)


def _float32_inside(forward, model, rounding: _Float32Compute, args, kwargs):
    """The forward of a nested model that keeps no cache (a VLM's vision tower), run inside an outer forward that
    rounds its activations to bf16 per op (`rounding`, the outer `_Float32Compute`): `_in_float32`, as it runs alone,
    with the outer mode suspended. What it hands the outer model is then the same in a forward with a cache and in one
    without: the rounding the decode step reproduces starts after it."""
    _state.rounding = None
    try:
        with _suspended(rounding):
            return _in_float32(forward, model, args, kwargs)
    finally:
        _state.rounding = rounding


@contextmanager
def _suspended(mode: _Float32Compute):
    """`mode` off while the block runs: taken off torch's function-mode stack when it is the innermost mode (then no
    Python hook runs on the block's ops), else told to keep float32 activations."""
    # torch's own helpers (private, in torch.overrides since 2.0): without them, the flag below does the same work
    innermost = getattr(torch.overrides, "_get_current_function_mode", lambda: None)
    pop_temporarily = getattr(torch.overrides, "_pop_mode_temporarily", None)
    if pop_temporarily is not None and innermost() is mode:
        with pop_temporarily():
            yield
        return
    mode.float32_activations = True
    try:
        yield
    finally:
        mode.float32_activations = False


def float32_unless_native_bf16(forward):
    """Decorates a model's `forward` with the module's policy: on a CPU without native bf16, bf16 autocast is turned
    off inside it (bf16 inputs widened to float32) and bf16 weights are read into float32 ops; on a CPU with it, or for
    float32 weights without autocast, the forward runs unchanged. Nested policed forwards (a VLM's tower and language
    model) run inside the outer one's decision, but for one case: a nested model with bf16 weights that keeps no cache
    (a VLM's tower), inside a forward that rounds per op, computes in float32 and rounds its outputs once
    (`_float32_inside`), as it does alone.

    bf16 weights are read in one of three ways:
    - a forward that keeps no cache runs with float32 activations, its float32 outputs narrowed to bf16 at the end:
      narrowing every op's output to bf16 and widening it again in the next op cost a small MambaVision forward a
      third of its time. Its weights are widened
      - all at once when the forward starts, if their float32 copies take at most `SWAP_LIMIT_BYTES`
        (`_float32_weights`): the forward then does exactly float32's work plus one widening of each weight, where
        per-op interception costs a Python hook on every torch call (a quarter of that small forward). The copies
        live while the forward runs (in training, until the backward, as any widened op's do);
      - op by op (`_Float32Compute(float32_activations=True)`) for larger models, or while another thread runs a
        forward on swapped weights: copies of a few hundred megabytes come from fresh pages on every forward, whose
        faults and unmapping cost MambaVision-T (127 MB) 47 ms a forward, more than the hooks.
    - per op with the activations rounded to bf16 after every widened op (`_Float32Compute()`): for a model class
      that sets `keeps_bf16_activations` (the Mamba LM's, whose fused bf16 decode step reproduces that rounding token
      for token, and whose residual stream keeps a dtype of its own) and for a forward that returns or continues a
      cache (whose states keep their dtypes: bf16 windows, float32 scan states)."""

    @functools.wraps(forward)
    def policed_forward(self, *args, **kwargs):
        if getattr(_state, "inside", False):
            rounding = getattr(_state, "rounding", None)
            if (
                rounding is None
                or _keeps_bf16_activations(self, kwargs)
                or _weights_dtype_and_device(self)[0] != torch.bfloat16
            ):
                return forward(self, *args, **kwargs)
            return _float32_inside(forward, self, rounding, args, kwargs)
        if has_native_bf16():
            return forward(self, *args, **kwargs)
        dtype, device = _weights_dtype_and_device(self)
        autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        bf16_weights = dtype == torch.bfloat16 and not (torch.is_grad_enabled() and _checkpointing(self))
        if device != "cpu" or not (autocast or bf16_weights):
            return forward(self, *args, **kwargs)
        _warn_float32_fallback()
        _state.inside = True
        try:
            with torch.autocast("cpu", enabled=False):
                if bf16_weights and not _keeps_bf16_activations(self, kwargs):
                    return _in_float32(forward, self, args, kwargs)
                if bf16_weights:
                    _state.rounding = _Float32Compute()
                    with _state.rounding:
                        return forward(self, *args, **kwargs)
                # autocast over float32 weights: bf16 inputs would meet them in ops refusing mixed dtypes
                args, kwargs = _widened(args), _widened(kwargs)
                return forward(self, *args, **kwargs)
        finally:
            _state.inside, _state.rounding = False, None

    policed_forward.keeps_float32_without_native_bf16 = True  # what the generic test checks for every model class
    return policed_forward


__all__ = [
    "NATIVE_BF16_FLAGS",
    "WIDENED_FUNCTIONS",
    "architecture",
    "bf16_attention_in_float32",
    "float32_unless_native_bf16",
    "has_native_bf16",
    "native_bf16_flags",
    "scaled_dot_product_attention",
]
