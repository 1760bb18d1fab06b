"""The compiled CPU path of `ssm.py`: builds `ssm_cpu.cpp` on first use and wraps it in autograd Functions.

The kernel is plain C++ with OpenMP, compiled by the system compiler into a shared library that ctypes loads: no
torch headers and no ninja, so the build takes about a second and needs only what `pip install` of this package
already needs (a C++ compiler). The library is cached under `~/.cache/mamba_multimodal/kernels/<hash>/`, keyed by the
source, the compiler, the flags and the CPU (it is built with `-march=native`). When no compiler works, `load()`
returns None and `ssm.py` falls back to its pure-PyTorch path with one warning.

Environment: `MAMBA_MULTIMODAL_CACHE` moves the cache; `CXX` picks the compiler.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

_SOURCE = Path(__file__).with_name("ssm_cpu.cpp")
_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-shared", "-std=c++17"]
_c_float_p = ctypes.POINTER(ctypes.c_float)
_i64 = ctypes.c_int64


def _cpu_signature() -> str:
    """What -march=native code depends on: the CPU's model name and feature flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() + platform.machine()
    wanted = [next((line for line in lines if line.startswith(key)), "") for key in ("model name", "flags")]
    return "\n".join(wanted)


def _compiler() -> str | None:
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def _library_path(compiler: str) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256(
        "\0".join([_SOURCE.read_text(), compiler, version, " ".join(_FLAGS), _cpu_signature()]).encode()
    ).hexdigest()[:16]
    root = Path(os.environ.get("MAMBA_MULTIMODAL_CACHE", Path.home() / ".cache" / "mamba_multimodal"))
    return root / "kernels" / key / "libssm_cpu.so"


def _build(compiler: str, target: Path) -> None:
    """Compiles into a temporary file beside `target`, then renames: a concurrent or interrupted build never
    leaves a half-written library behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".so.partial")
    os.close(handle)
    try:
        subprocess.run([compiler, *_FLAGS, str(_SOURCE), "-o", partial], check=True, capture_output=True, text=True)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _declare(library: ctypes.CDLL) -> None:
    f, i = _c_float_p, ctypes.c_int
    library.selective_scan_fwd.argtypes = [f] * 8 + [i, f, f, f, _i64, _i64, _i64, _i64, i]
    library.selective_scan_bwd.argtypes = [f] * 8 + [i] + [f] * 12 + [_i64, _i64, _i64, _i64, i]
    library.linear_recurrence_fwd.argtypes = [f, f, f, f, _i64, _i64, i]
    library.linear_recurrence_bwd.argtypes = [f] * 7 + [_i64, _i64, i]
    coupled_sizes = [_i64] * 5 + [i]
    library.coupled_scan_fwd.argtypes = [f] * 8 + [i, i, ctypes.c_float, f, f, f, *coupled_sizes]
    library.coupled_scan_bwd.argtypes = [f] * 8 + [i, i, ctypes.c_float] + [f] * 12 + coupled_sizes
    for function in ("selective_scan", "linear_recurrence", "coupled_scan"):
        getattr(library, f"{function}_fwd").restype = None
        getattr(library, f"{function}_bwd").restype = None


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; None when it cannot be built or loaded."""
    from transformers.utils import logging

    logger = logging.get_logger(__name__)
    compiler = _compiler()
    if compiler is None:
        logger.warning("No C++ compiler found (set CXX): the selective scan runs on the slower pure-PyTorch path.")
        return None
    try:
        target = _library_path(compiler)
        if not target.exists():
            _build(compiler, target)
        library = ctypes.CDLL(str(target))
        _declare(library)
        return library
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        logger.warning(f"Building the CPU scan kernel failed; using the pure-PyTorch path. {detail[-2000:]}")
        return None


def _ptr(tensor: torch.Tensor | None):
    return None if tensor is None else ctypes.cast(tensor.data_ptr(), _c_float_p)


def _f32(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().to(torch.float32).contiguous()


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias) -> list[torch.Tensor | None]:
    """Contiguous float32 copies in the kernels' layout: B and C time-major, (..., n, l) → (..., l, n)."""
    return (
        [_f32(t) for t in (u, delta, A)]
        + [_f32(t.transpose(-1, -2)) for t in (B, C)]
        + [_f32(t) for t in (D, z, delta_bias)]
    )


def _save_inputs(ctx, originals, float32_copies) -> None:
    """Saves the float32 copies (None as an empty tensor) and the original dtypes, for the backward."""
    ctx.save_for_backward(*[t if t is not None else torch.empty(0) for t in float32_copies])
    ctx.present = [t is not None for t in float32_copies]
    ctx.dtypes = [None if t is None else t.dtype for t in originals]


def _saved_inputs(ctx) -> list[torch.Tensor | None]:
    return [t if present else None for t, present in zip(ctx.saved_tensors, ctx.present, strict=True)]


def _gradient_buffers(u, delta, A, B, C, D, z, delta_bias) -> list[torch.Tensor | None]:
    """Buffers for the kernels' gradients: the accumulated ones (A, D, delta_bias) zeroed, the others written whole."""
    grads = [torch.empty_like(t) for t in (u, delta)] + [torch.zeros_like(A)]
    grads += [torch.empty_like(t) for t in (B, C)]
    grads += [None if D is None else torch.zeros_like(D), None if z is None else torch.empty_like(z)]
    return [*grads, None if delta_bias is None else torch.zeros_like(delta_bias)]


def _to_input_dtypes(dtypes, grads) -> list[torch.Tensor | None]:
    """Gradients in the dtypes of the inputs; B and C go back from the kernels' (..., l, n) to (..., n, l)."""
    grads = [*grads[:3], grads[3].transpose(-1, -2), grads[4].transpose(-1, -2), *grads[5:]]
    return [None if g is None else g.to(dtype) for g, dtype in zip(grads, dtypes, strict=True)]


class SelectiveScanCPU(torch.autograd.Function):
    """Autograd wrapper of the fused kernel. Inputs in mamba_ssm's layout; B and C are (b, n, l); initial_state is
    h_{-1} (b, d, n), or None for zeros."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state=None):
        library = load()
        batch, dim, length = u.shape
        nstate = A.shape[1]
        f32 = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
        h0 = _f32(initial_state)
        out = torch.empty(batch, dim, length, dtype=torch.float32)
        last_state = torch.empty(batch, dim, nstate, dtype=torch.float32)
        library.selective_scan_fwd(
            *map(_ptr, f32), int(delta_softplus), _ptr(h0), _ptr(out), _ptr(last_state),
            batch, dim, length, nstate, torch.get_num_threads(),
        )  # fmt: skip
        _save_inputs(ctx, (u, delta, A, B, C, D, z, delta_bias, initial_state), [*f32, h0])
        ctx.delta_softplus = delta_softplus
        out = out.to(u.dtype)
        return (out, last_state) if return_last_state else out

    @staticmethod
    def backward(ctx, dout, dlast_state=None):
        library = load()
        *inputs, h0 = _saved_inputs(ctx)
        batch, dim, length = inputs[0].shape
        nstate = inputs[2].shape[1]
        grads = _gradient_buffers(*inputs)
        dh0 = None if h0 is None else torch.empty_like(h0)
        # Keep the float32 copies referenced: a temporary freed before the call would leave a dangling pointer.
        dout, dlast_state = _f32(dout), _f32(dlast_state)
        library.selective_scan_bwd(
            *map(_ptr, inputs), int(ctx.delta_softplus), _ptr(h0), _ptr(dout), _ptr(dlast_state),
            *map(_ptr, grads), _ptr(dh0), batch, dim, length, nstate, torch.get_num_threads(),
        )  # fmt: skip
        *dtypes, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None else dh0.to(h0_dtype)
        return (*_to_input_dtypes(dtypes, grads), None, None, dh0)


class LinearRecurrenceCPU(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + b_t along the last axis; a, b: (..., l); initial_state: (...) or None."""

    @staticmethod
    def forward(ctx, a, b, initial_state):
        library = load()
        shape, length = a.shape, a.shape[-1]
        a32, b32 = _f32(a).reshape(-1, length), _f32(b).reshape(-1, length)
        h0 = None if initial_state is None else _f32(initial_state).reshape(-1)
        h = torch.empty_like(a32)
        library.linear_recurrence_fwd(
            _ptr(a32), _ptr(b32), _ptr(h0), _ptr(h), a32.shape[0], length, torch.get_num_threads()
        )
        ctx.save_for_backward(a32, h, h0 if h0 is not None else torch.empty(0))
        ctx.has_initial_state = h0 is not None
        ctx.shape, ctx.dtypes = shape, (a.dtype, b.dtype, None if initial_state is None else initial_state.dtype)
        return h.reshape(shape).to(torch.promote_types(a.dtype, b.dtype))

    @staticmethod
    def backward(ctx, dh):
        library = load()
        a32, h, h0 = ctx.saved_tensors
        h0 = h0 if ctx.has_initial_state else None
        rows, length = a32.shape
        da, db = torch.empty_like(a32), torch.empty_like(a32)
        dh0 = None if h0 is None else torch.empty_like(h0)
        dh = _f32(dh).reshape(rows, length)  # referenced until the call returns
        library.linear_recurrence_bwd(
            _ptr(a32),
            _ptr(h),
            _ptr(h0),
            _ptr(dh),
            _ptr(da),
            _ptr(db),
            _ptr(dh0),
            rows,
            length,
            torch.get_num_threads(),
        )
        da_dtype, db_dtype, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None else dh0.reshape(ctx.shape[:-1]).to(h0_dtype)
        return da.reshape(ctx.shape).to(da_dtype), db.reshape(ctx.shape).to(db_dtype), dh0


class CoupledScanCPU(torch.autograd.Function):
    """Autograd wrapper of the fused coupled scan. u, delta, z: (M, b, d, l); A: (M, d, n); B, C: (M, b, n, l);
    D, delta_bias: (M, d). `weight` scales the summed state (1: Eq. 6's sum, 1/M: mean); coupled=False: no coupling.
    initial_state: the carried state before the first step, (b, d, n) when coupled, (M, b, d, n) otherwise, or None."""

    @staticmethod
    def forward(
        ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, coupled, weight, initial_state, return_last_state
    ):
        library = load()
        modalities, batch, dim, length = u.shape
        nstate = A.shape[-1]
        f32 = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
        h0 = _f32(initial_state)
        out = torch.empty(modalities, batch, dim, length, dtype=torch.float32)
        last_state = torch.empty(*(() if coupled else (modalities,)), batch, dim, nstate, dtype=torch.float32)
        sizes = (modalities, batch, dim, length, nstate, torch.get_num_threads())
        library.coupled_scan_fwd(
            *map(_ptr, f32), int(delta_softplus), int(coupled), weight, _ptr(h0), _ptr(out), _ptr(last_state), *sizes
        )
        _save_inputs(ctx, (u, delta, A, B, C, D, z, delta_bias, initial_state), [*f32, h0])
        ctx.flags = (int(delta_softplus), int(coupled), weight)
        out = out.to(u.dtype)
        return (out, last_state) if return_last_state else out

    @staticmethod
    def backward(ctx, dout, dlast_state=None):
        library = load()
        *inputs, h0 = _saved_inputs(ctx)
        grads = _gradient_buffers(*inputs)
        dh0 = None if h0 is None else torch.empty_like(h0)
        dout, dlast_state = _f32(dout), _f32(dlast_state)  # referenced until the call returns
        sizes = (*inputs[0].shape, inputs[2].shape[-1], torch.get_num_threads())
        library.coupled_scan_bwd(
            *map(_ptr, inputs), *ctx.flags, _ptr(h0), _ptr(dout), _ptr(dlast_state), *map(_ptr, grads), _ptr(dh0),
            *sizes,
        )  # fmt: skip
        *dtypes, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None else dh0.to(h0_dtype)
        return (*_to_input_dtypes(dtypes, grads), None, None, None, dh0, None)
