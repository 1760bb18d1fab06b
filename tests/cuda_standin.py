"""The package's "cuda" path on CPU tensors: mamba-ssm and causal-conv1d, installed with their CUDA builds skipped
(`make test-cuda-standin`), with only their compiled parts replaced by the packages' own reference functions.

What runs is the packages' Python as on a GPU: mamba_ssm's `selective_scan_fn` (its autograd Function, which makes
the last dims contiguous and B, C grouped), `selective_state_update`'s Triton launcher (its shape asserts and stride
arguments) and causal_conv1d's `causal_conv1d_update` (its torch custom op). What stands in:
- the extension `selective_scan_cuda` (fwd, bwd): mamba_ssm's `selective_scan_ref`, and autograd through it;
- the Triton kernel `_selective_scan_update_kernel`: mamba_ssm's `selective_state_update_ref`;
- the extension `causal_conv1d_cuda` (causal_conv1d_update): causal_conv1d's `causal_conv1d_update_ref`.
Every stand-in records its call (`Call`: each tensor's shape, dtype, strides) and first checks what the compiled kernel
checks, as mamba-ssm 2.3's csrc/selective_scan/selective_scan.cpp and causal-conv1d 1.7's csrc/causal_conv1d.cpp write
their TORCH_CHECKs (dtypes, shapes, unit stride of the last dim), raising RuntimeError as they do; only `is_cuda` is
read as "all on one device". `cuda_kernels()` itself runs (with torch.cuda.is_available() answering True for its one
call) and `ssm._device_type` reads CPU tensors as "cuda": the dispatch then takes the "cuda" path exactly where it
would on a GPU.

    recorder = install(monkeypatch)     # in a test; everything is undone with the monkeypatch
    model(**inputs)                     # selective scans go through mamba_ssm's selective_scan_fn
    recorder.names()                    # ["selective_scan_fwd", ...]
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass, field

import torch

PACKAGES = ("mamba_ssm", "causal_conv1d", "triton", "einops")  # what the stand-ins need installed
_FLOAT_INPUTS = (torch.float32, torch.float16, torch.bfloat16)  # the kernels' input and weight types
_SCAN_CHUNK = 2048  # selective_scan.cpp: the forward keeps one state per chunk of 2048 steps


def missing_packages() -> list[str]:
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def compiled_kernels_installed() -> bool:
    """Whether a real (compiled) selective_scan_cuda or causal_conv1d_cuda is importable: then the stand-ins would
    shadow it, and bench/gpu_check.py is the check to run."""
    return any(
        sys.modules.get(name) is not module and (name in sys.modules or importlib.util.find_spec(name) is not None)
        for name, module in EXTENSIONS.items()
    )


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: torch.dtype
    stride: tuple[int, ...]


@dataclass
class Call:
    """One call of a compiled op: its name and its arguments as the kernel received them (in order)."""

    name: str
    arguments: dict[str, TensorInfo | object]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def record(self, name: str, **arguments) -> None:
        def describe(value):
            if isinstance(value, torch.Tensor):
                return TensorInfo(tuple(value.shape), value.dtype, tuple(value.stride()))
            return value

        self.calls.append(Call(name, {key: describe(value) for key, value in arguments.items()}))

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def of(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]


_RECORDER = Recorder()  # the fake extensions are imported once per process; install() gives each test a fresh one


def _check(condition: bool, message: str) -> None:
    """TORCH_CHECK: the kernels raise RuntimeError (c10::Error) naming the failed condition."""
    if not condition:
        raise RuntimeError(f"stand-in for the compiled kernel: {message}")


def _check_shape(name: str, tensor: torch.Tensor, *shape: int) -> None:
    _check(tuple(tensor.shape) == shape, f"{name} must have shape {shape}, got {tuple(tensor.shape)}")


def _check_unit_stride(name: str, tensor: torch.Tensor) -> None:
    _check(tensor.stride(-1) == 1 or tensor.size(-1) == 1, f"{name} must have stride 1 in its last dim")


def _check_one_device(**tensors) -> None:
    devices = {t.device for t in tensors.values() if isinstance(t, torch.Tensor)}
    _check(len(devices) == 1, f"every tensor on one device, got {devices}")


# ----------------------------------------------------------------------------- selective_scan_cuda (fwd/bwd)
def _scan_reference():
    from mamba_ssm.ops.selective_scan_interface import selective_scan_ref

    return selective_scan_ref


def _check_scan_arguments(u, delta, A, B, C, D, z, delta_bias) -> tuple[int, int, int, int]:
    """selective_scan.cpp's checks shared by fwd and bwd; returns (batch, dim, seqlen, dstate)."""
    input_type, weight_type = u.dtype, A.dtype
    _check(input_type in _FLOAT_INPUTS, f"u must be float32, float16 or bfloat16, got {input_type}")
    _check(weight_type == torch.float32, f"A must be float32 (real A), got {weight_type}")
    _check(delta.dtype == input_type, f"delta must have u's dtype {input_type}, got {delta.dtype}")
    for name, tensor in (("B", B), ("C", C)):
        variable = tensor.dim() >= 3
        expected = input_type if variable else weight_type
        _check(tensor.dtype == expected, f"{name} must be {expected} (variable: u's dtype), got {tensor.dtype}")
    _check_unit_stride("u", u)
    _check_unit_stride("delta", delta)
    batch, dim, seqlen = u.shape
    dstate = A.shape[1]
    _check(dstate <= 256, "selective_scan only supports state dimension <= 256")
    _check_shape("u", u, batch, dim, seqlen)
    _check_shape("delta", delta, batch, dim, seqlen)
    _check_shape("A", A, dim, dstate)
    for name, tensor in (("B", B), ("C", C)):
        if tensor.dim() < 3:
            _check_shape(name, tensor, dim, dstate)
        else:  # selective_scan_fn hands the kernel (b, groups, n, l), never (b, n, l)
            _check(tensor.dim() == 4, f"{name} must be 4-D (batch, groups, state, length), got {tensor.dim()}-D")
            _check_shape(name, tensor, batch, tensor.shape[1], dstate, seqlen)
            _check(dim % tensor.shape[1] == 0, f"{name}'s groups must divide the channels")
            _check_unit_stride(name, tensor)
    for name, tensor in (("D", D), ("delta_bias", delta_bias)):
        if tensor is not None:
            _check(tensor.dtype == torch.float32, f"{name} must be float32, got {tensor.dtype}")
            _check_unit_stride(name, tensor)
            _check_shape(name, tensor, dim)
    if z is not None:
        _check(z.dtype == input_type, f"z must have u's dtype {input_type}, got {z.dtype}")
        _check_unit_stride("z", z)
        _check_shape("z", z, batch, dim, seqlen)
    _check_one_device(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    return batch, dim, seqlen, dstate


def _scan_fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """selective_scan_cuda.fwd: [out, x] (+ [out_z] with z). x (b, d, n_chunks, 2n) holds the state at the end of
    every chunk in its odd entries: selective_scan_fn reads the last state from x[:, :, -1, 1::2]."""
    _RECORDER.record("selective_scan_fwd", u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias,
                     delta_softplus=delta_softplus)  # fmt: skip
    batch, dim, seqlen, dstate = _check_scan_arguments(u, delta, A, B, C, D, z, delta_bias)
    reference = _scan_reference()
    with torch.no_grad():
        out, last_state = reference(u, delta, A, B, C, D, None, delta_bias, delta_softplus, return_last_state=True)
        chunks = torch.zeros(batch, dim, -(-seqlen // _SCAN_CHUNK), 2 * dstate, dtype=A.dtype, device=u.device)
        chunks[:, :, -1, 1::2] = last_state
        if z is None:
            return [out, chunks]
        return [out, chunks, reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)]


def _scan_bwd(u, delta, A, B, C, D, z, delta_bias, dout, x, out, dz, delta_softplus, recompute_out_z):
    """selective_scan_cuda.bwd: [du, ddelta, dA, dB, dC, dD, ddelta_bias] (+ [dz] with z, + [out_z] on request),
    each in its input's dtype (dA, dD, ddelta_bias float32), through autograd over `selective_scan_ref`."""
    _RECORDER.record("selective_scan_bwd", u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias,
                     dout=dout, x=x, out=out, delta_softplus=delta_softplus)  # fmt: skip
    batch, dim, seqlen, dstate = _check_scan_arguments(u, delta, A, B, C, D, z, delta_bias)
    _check(dout.dtype == u.dtype, f"dout must have u's dtype {u.dtype}, got {dout.dtype}")
    _check_unit_stride("dout", dout)
    _check_shape("dout", dout, batch, dim, seqlen)
    _check(x is not None and x.dtype == A.dtype and x.is_contiguous(), "x must be A's dtype and contiguous")
    _check_shape("x", x, batch, dim, -(-seqlen // _SCAN_CHUNK), 2 * dstate)
    if z is not None:
        _check(out is not None and out.dtype == u.dtype, "out (the ungated output) must be given in u's dtype")
        _check_unit_stride("out", out)
        _check_shape("out", out, batch, dim, seqlen)
    leaves = [t.detach().requires_grad_() if t is not None else None for t in (u, delta, A, B, C, D, z, delta_bias)]
    with torch.enable_grad():
        gated = _scan_reference()(*leaves, delta_softplus)
        wanted = [t for t in leaves if t is not None]
        grads = iter(torch.autograd.grad(gated, wanted, dout))
    du, ddelta, dA, dB, dC, dD, dz, ddelta_bias = (next(grads) if t is not None else None for t in leaves)
    result = [du, ddelta, dA, dB, dC, dD, ddelta_bias]
    if z is not None:
        result.append(dz)
        if recompute_out_z:
            result.append(gated.detach())
    return result


# ------------------------------------------------------------------------- the Triton state-update kernel
class _StateUpdateKernel:
    """Stands in for `_selective_scan_update_kernel[grid](...)`: takes the launcher's arguments as the kernel does
    (state (b, h, d, n), x, dt, z (b, h, d), dt_bias, D (h, d), A (h, d, n), B, C (b, g, n), out, then the sizes, the
    strides and dt_softplus, tie_hdim, BLOCK_SIZE_M) and writes out and the new state through them."""

    def __getitem__(self, grid):
        return self

    def __call__(self, state, x, dt, dt_bias, A, B, C, D, z, out, state_batch_indices, *sizes_and_strides, **launch):
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update_ref

        dt_softplus = sizes_and_strides[-3]
        _RECORDER.record("selective_state_update", state=state, x=x, dt=dt, dt_bias=dt_bias, A=A, B=B, C=C, D=D,
                         z=z, out=out, dt_softplus=dt_softplus)  # fmt: skip
        _check(state_batch_indices is None, "state_batch_indices is not used by this package")
        _check_one_device(state=state, x=x, dt=dt, dt_bias=dt_bias, A=A, B=B, C=C, D=D, z=z, out=out)
        with torch.no_grad():
            out.copy_(selective_state_update_ref(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus))


# -------------------------------------------------------------------------- causal_conv1d_cuda (update)
def _conv_update(x, conv_state, weight, bias, out, silu_activation, cache_seqlens, conv_state_indices):
    """causal_conv1d_cuda.causal_conv1d_update: writes out (b, d, l) and the new window into conv_state."""
    from causal_conv1d.causal_conv1d_interface import causal_conv1d_update_ref

    _RECORDER.record("causal_conv1d_update", x=x, conv_state=conv_state, weight=weight, bias=bias, out=out,
                     silu_activation=silu_activation)  # fmt: skip
    _check(x.dtype in _FLOAT_INPUTS, f"x must be float32, float16 or bfloat16, got {x.dtype}")
    _check(weight.dtype in _FLOAT_INPUTS, f"weight must be float32, float16 or bfloat16, got {weight.dtype}")
    _check(conv_state.dtype == x.dtype, f"conv_state must have x's dtype {x.dtype}, got {conv_state.dtype}")
    batch, dim, _ = x.shape
    width = weight.shape[-1]
    _check(conv_state.shape[2] >= width - 1, "conv_state must keep at least width - 1 steps")
    _check_shape("weight", weight, dim, width)
    _check(2 <= width <= 4, "causal_conv1d only supports width between 2 and 4")
    if bias is not None:
        _check(bias.dtype == weight.dtype, f"bias must have weight's dtype {weight.dtype}, got {bias.dtype}")
        _check_unit_stride("bias", bias)
        _check_shape("bias", bias, dim)
    _check(cache_seqlens is None and conv_state_indices is None, "cache_seqlens/conv_state_indices are not used")
    _check_shape("conv_state", conv_state, batch, dim, conv_state.shape[2])
    _check_one_device(x=x, conv_state=conv_state, weight=weight, bias=bias, out=out)
    with torch.no_grad():
        out.copy_(causal_conv1d_update_ref(x, conv_state, weight, bias, "silu" if silu_activation else None))


def _unused(name: str):
    def refuse(*args, **kwargs):
        raise NotImplementedError(f"{name}: not a kernel this package calls")

    return refuse


def _extension(name: str, **functions) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__doc__ = f"Stand-in for the compiled {name} (tests/cuda_standin.py)."
    module.__dict__.update(functions)
    return module


EXTENSIONS = {
    "selective_scan_cuda": _extension("selective_scan_cuda", fwd=_scan_fwd, bwd=_scan_bwd),
    "causal_conv1d_cuda": _extension(
        "causal_conv1d_cuda",
        causal_conv1d_update=_conv_update,
        causal_conv1d_fwd=_unused("causal_conv1d_fwd"),
        causal_conv1d_bwd=_unused("causal_conv1d_bwd"),
    ),
}


# ---------------------------------------------------------------------------------------------- install
class _NoDevice(contextlib.nullcontext):
    """torch.cuda.device(index) for the Triton launcher's `with torch.cuda.device(x.device.index)`."""

    def __init__(self, device=None):
        super().__init__()


def install(monkeypatch) -> Recorder:
    """Makes the package's dispatch run CPU tensors on its "cuda" path with the stand-ins; returns a fresh Recorder.

    The fake extensions go into sys.modules before mamba_ssm / causal_conv1d are first imported (their modules import
    them at import time) and stay there for the process: a test that imports mamba_ssm later gets the same ones."""
    global _RECORDER
    from mamba_multimodal.modeling import ssm

    _check(not compiled_kernels_installed(), "the compiled kernels are installed here: run bench/gpu_check.py")
    for name, module in EXTENSIONS.items():
        sys.modules.setdefault(name, module)
    state_update = importlib.import_module("mamba_ssm.ops.triton.selective_state_update")
    monkeypatch.setattr(state_update, "_selective_scan_update_kernel", _StateUpdateKernel())
    monkeypatch.setattr(torch.cuda, "device", _NoDevice)
    with monkeypatch.context() as only_here:
        only_here.setattr(torch.cuda, "is_available", lambda: True)
        ops = ssm.cuda_kernels.__wrapped__()  # the real lookup, not its cached "None" of this CPU machine
    _check(ops is not None and None not in (ops.selective_scan, ops.state_update, ops.conv1d_update),
           f"cuda_kernels() found {ops}")  # fmt: skip
    monkeypatch.setattr(ssm, "cuda_kernels", lambda: ops)
    device_type = ssm._device_type

    def cpu_as_cuda(tensor: torch.Tensor) -> str:
        return "cuda" if tensor.device.type == "cpu" else device_type(tensor)

    for module in [m for name, m in sys.modules.items() if name.startswith("mamba_multimodal")]:
        if getattr(module, "_device_type", None) is device_type:
            monkeypatch.setattr(module, "_device_type", cpu_as_cuda)
    _RECORDER = Recorder()
    return _RECORDER
