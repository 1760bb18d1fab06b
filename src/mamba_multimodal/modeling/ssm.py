"""Selective state-space scans (Mamba, arXiv 2312.00752, Alg. 2), their backend resolution, and the causal conv step.

Glossary: b batch, l sequence length, d channels (d_inner), n state size, Δ (delta) input-dependent step.
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t ;  y_t = C_t · h_t + D x_t ;  out_t = y_t · silu(z_t)

`selective_scan` takes mamba_ssm's `selective_scan_fn` arguments and picks a path (one INFO log line per path):
- "cuda":      mamba_ssm's fused kernel, for CUDA tensors when its compiled extension imports;
- "cpu":       the fused C++/OpenMP kernel of `ssm_cpu.cpp`, built on first use (needs a C++ compiler);
- "pytorch":   a chunked scan in plain PyTorch (O(√l) Python steps), used when nothing compiled is available and
               whenever the model is traced (torch.onnx.export, torch.jit.trace, torch.compile);
- "reference": `selective_scan_ref`, the readable sequential definition every other path is tested against.
`backend="pytorch"` (or `config.scan_backend = "pytorch"` on a model) forces the plain-PyTorch path; a forced path that
cannot run here (the CPU kernel on a CUDA or meta tensor, mamba_ssm without its compiled extension, no C++ compiler)
raises ValueError saying why. `selective_scan(..., initial_state=h)` continues from a state (b, d, n) on every path;
on CUDA tensors that takes the "pytorch" path, since mamba_ssm's kernel always starts from zeros. Where the CPU kernel
is cached, and how it behaves after fork: see `ssm_cpu.py`.

Layout of the scan layer:
- `ssm.py` (this file): the selective scan on its four paths and one step of it (`selective_state_update`), the
  backend resolution every scan goes through (`resolve_backend`), the shared pieces (input checks, discretisation,
  the chunked plain-PyTorch recurrence), and the streaming causal conv step (`causal_conv1d_update`);
- `ssm_coupled.py`: Coupled Mamba's scan of M modalities whose states are coupled (arXiv 2405.18014, Eq. 6),
  `coupled_scan` and its step `coupled_state_update`, built on the pieces here;
- `ssm_cpu.py` and `ssm_cpu.cpp`: the compiled CPU kernels of both scans and their autograd wrappers.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging

from ..configuration.validation import SCAN_BACKENDS as BACKENDS  # the choices of every config's `scan_backend`
from . import ssm_cpu  # load() / build_error read through the module (tests replace them)
from .ssm_cpu import SelectiveScanCPU

logger = logging.get_logger(__name__)

_FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
_CONV_ACTIVATIONS = (None, "silu", "swish")
_CUDA_KERNELS = ("selective_scan",)  # the scans mamba_ssm has a kernel for (cuda_kernels())
_CPU_KERNELS = ("selective_scan", "coupled_scan")  # the scans ssm_cpu.cpp has kernels for


# --------------------------------------------------------------------------------------------------- checks
def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_float(name: str, tensor: torch.Tensor) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point tensor (float32, bfloat16, float16), got {tensor.dtype}")


def _check_shape(name: str, tensor: torch.Tensor | None, expected: tuple[int, ...], layout: str) -> None:
    if tensor is None:
        return
    _check_float(name, tensor)
    _require(
        tuple(tensor.shape) == expected,
        f"{name} must have shape {layout} = {expected}, got {tuple(tensor.shape)}",
    )


def check_scan_inputs(u, delta, A, B, C, D=None, z=None, delta_bias=None, initial_state=None) -> None:
    """Raises ValueError/TypeError naming the argument when a shape or dtype does not fit mamba_ssm's layout."""
    _check_float("u", u)
    _require(u.dim() == 3, f"u must be 3-D (batch, channels, length), got shape {tuple(u.shape)}")
    batch, dim, length = u.shape
    _require(length >= 1, "u must have at least one time step (length 0 given)")
    _check_float("A", A)
    _require(
        A.dim() == 2 and A.shape[0] == dim, f"A must have shape (channels, state) = ({dim}, n), got {tuple(A.shape)}"
    )
    nstate = A.shape[1]
    _check_shape("delta", delta, (batch, dim, length), "(batch, channels, length)")
    _check_shape("B", B, (batch, nstate, length), "(batch, state, length)")
    _check_shape("C", C, (batch, nstate, length), "(batch, state, length)")
    _check_shape("z", z, (batch, dim, length), "(batch, channels, length)")
    _check_shape("D", D, (dim,), "(channels,)")
    _check_shape("delta_bias", delta_bias, (dim,), "(channels,)")
    _check_shape("initial_state", initial_state, (batch, dim, nstate), "(batch, channels, state)")
    devices = {t.device for t in (u, delta, A, B, C, D, z, delta_bias, initial_state) if t is not None}
    _require(len(devices) == 1, f"all scan inputs must be on one device, got {sorted(map(str, devices))}")


# ------------------------------------------------------------------------------------------------ reference
def _acc(tensor: torch.Tensor) -> torch.Tensor:
    """The accumulation dtype: float32, or float64 for float64 inputs (used as ground truth in tests)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _discretize(u, delta, A, B, delta_bias, delta_softplus):
    """The per-step decay exp(Δ A) and drive Δ B x, both (b, d, n, l), in the accumulation dtype."""
    delta = _acc(delta)
    if delta_bias is not None:
        delta = delta + _acc(delta_bias)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    decay = torch.exp(delta[:, :, None, :] * _acc(A)[None, :, :, None])  #                     (b, d, n, l)
    drive = (delta * _acc(u))[:, :, None, :] * _acc(B)[:, None, :, :]  #                       (b, d, n, l)
    return decay, drive


def _finish(y, u, D, z, out_dtype):
    """y + D x, gated by silu(z), cast back to the input dtype. u, y, z: (b, d, l) or (b, d); D: (d,)."""
    if D is not None:
        y = y + _acc(u) * _acc(D).view(-1, *([1] * (u.dim() - 2)))
    if z is not None:
        y = y * F.silu(_acc(z))
    return y.to(out_dtype)


def selective_scan_ref(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    initial_state=None,
):
    """The readable sequential definition (mamba_ssm's `selective_scan_ref`, fp32 accumulation).

    Args:
        u, delta, z: (b, d, l).  A: (d, n).  B, C: (b, n, l).  D, delta_bias: (d,).
        initial_state: h_{-1} (b, d, n), the state before the first step; None for zeros (mamba_ssm's only case).
    Returns:
        out (b, d, l) in u's dtype, and the last state h_l (b, d, n) when `return_last_state`, accumulated in
        float32 (float64 for float64 inputs, which makes it the ground truth of the tests).

    Iterates over `unbind` slices: indexing `decay[..., t]` inside the loop would give every step's backward a
    full-size zero gradient, a quadratic backward (transformers' slow path pays exactly that).
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state)
    out, states = _scan_step_by_step(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, False)
    return (out, states[-1]) if return_last_state else out


def _scan_step_by_step(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, keep_states: bool):
    """The sequential scan: out (b, d, l) in u's dtype, and the l states h_1..h_l (b, d, n) after each step with
    `keep_states` (then read out in one einsum), else only the last (then read out step by step, so that a long scan
    without autograd holds one state, not l)."""
    decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus)
    state = decay.new_zeros(decay.shape[:3]) if initial_state is None else initial_state.to(decay.dtype)  # (b, d, n)
    states, outputs = [], []
    for decay_t, drive_t, C_t in zip(decay.unbind(-1), drive.unbind(-1), _acc(C).unbind(-1), strict=True):
        state = decay_t * state + drive_t
        if keep_states:
            states.append(state)
        else:
            outputs.append(torch.einsum("bdn,bn->bd", state, C_t))
    if keep_states:
        y = torch.einsum("bdnl,bnl->bdl", torch.stack(states, dim=-1), _acc(C))
    else:
        y, states = torch.stack(outputs, dim=-1), [state]
    return _finish(y, u, D, z, u.dtype), states


def selective_scan_states(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, initial_state=None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`selective_scan` that also returns the state after every step, for a few steps: the drafted tokens of
    assisted decoding, whose states a rollback restores. Step by step in plain PyTorch (float32 accumulation), one
    discretisation for all steps, on any device.

    Args: as `selective_scan`.
    Returns:
        out (b, d, l) in u's dtype, and the list of the l states h_1..h_l, (b, d, n) float32 each.
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state)
    return _scan_step_by_step(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, True)


# ------------------------------------------------------------------------------------------ plain PyTorch
class _Chunks:
    """The chunked layout of the plain-PyTorch scan: l steps as K chunks of T ≈ √l steps, step axis first.

    (..., l) ↔ (T, ..., K): one chunk step of every chunk is one contiguous slice. The tail is padded with identity
    steps (decay 1, drive 0), which leave the state unchanged.
    """

    def __init__(self, length: int):
        self.length = length
        self.size = max(1, math.isqrt(length))
        self.count = -(-length // self.size)
        self.padding = self.count * self.size - length

    def split(self, x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
        """(..., l) → (T, ..., K), contiguous."""
        x = F.pad(x, (0, self.padding), value=pad_value).unflatten(-1, (self.count, self.size))
        return x.movedim(-1, 0).contiguous()

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """(T, ..., K) → (..., l)."""
        return x.movedim(0, -1).flatten(-2)[..., : self.length]

    def last(self, x: torch.Tensor) -> torch.Tensor:
        """(T, ..., K) → (...): the entry of the last real step."""
        return x[(self.length - 1) % self.size, ..., (self.length - 1) // self.size]


def _scan_chunks(a: torch.Tensor, b: torch.Tensor, initial_state: torch.Tensor | None) -> torch.Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t on (T, ..., K) chunked tensors, in T + K Python steps.

    Two levels: every chunk is scanned from a zero state (all chunks at once), then the states that enter each chunk
    are carried across chunks and added back, scaled by the chunk's running decay product. Only products and sums of
    the inputs appear: nothing is divided or exponentiated, so it is as stable as the sequential loop.
    """
    # 1. Inside every chunk at once: states from zero, and running products of the decays.
    local, running = [b[0]], [a[0]]
    for a_j, b_j in zip(a[1:], b[1:], strict=True):
        local.append(a_j * local[-1] + b_j)
        running.append(a_j * running[-1])
    # 2. Across chunks: the state entering chunk k.
    carry = torch.zeros_like(local[0][..., 0]) if initial_state is None else initial_state.to(local[0].dtype)
    entering = []
    for local_end, running_end in zip(local[-1].movedim(-1, 0), running[-1].movedim(-1, 0), strict=True):
        entering.append(carry)
        carry = running_end * carry + local_end
    # 3. Every state = its chunk-local state + the entering state carried through the chunk's decays.
    return torch.stack(local) + torch.stack(running) * torch.stack(entering, dim=-1)


def _selective_scan_pytorch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state):
    """Discretises directly in the chunked layout: only (b, d, l)-sized tensors are ever transposed."""
    chunks = _Chunks(u.shape[-1])
    delta = _acc(delta) + (0 if delta_bias is None else _acc(delta_bias)[:, None])
    delta = F.softplus(delta) if delta_softplus else delta
    delta_c, u_c = chunks.split(delta), chunks.split(_acc(u))  # zero-padded: Δ = 0 is an identity step   (T, b, d, K)
    B_c, C_c = chunks.split(_acc(B)), chunks.split(_acc(C))  #                                             (T, b, n, K)
    decay = torch.exp(delta_c[:, :, :, None] * _acc(A)[:, :, None])  #                                  (T, b, d, n, K)
    drive = (delta_c * u_c)[:, :, :, None] * B_c[:, :, None]  #                                         (T, b, d, n, K)
    states = _scan_chunks(decay, drive, None if initial_state is None else initial_state.to(decay.dtype))
    y = chunks.merge((states * C_c[:, :, None]).sum(3))  #                                                 (b, d, l)
    out = _finish(y, u, D, z, u.dtype)
    return (out, chunks.last(states)) if return_last_state else out


# --------------------------------------------------------------------------------------- compiled paths
@functools.cache
def cuda_kernels() -> SimpleNamespace | None:
    """mamba_ssm / causal_conv1d ops when their *compiled* extensions import, else None.

    A `mamba_ssm` built without CUDA installs but fails on `selective_scan_cuda`; checking the package is not enough.
    """
    if not torch.cuda.is_available():
        return None
    ops = SimpleNamespace(selective_scan=None, state_update=None, conv1d_update=None)
    try:
        import selective_scan_cuda  # noqa: F401
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        ops.selective_scan = selective_scan_fn
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update

        ops.state_update = selective_state_update
    except Exception:  # any import failure of an optional kernel means "not available"
        pass
    try:
        import causal_conv1d_cuda  # noqa: F401
        from causal_conv1d import causal_conv1d_update

        ops.conv1d_update = causal_conv1d_update
    except Exception:
        pass
    return ops if ops.selective_scan or ops.conv1d_update else None


def _device_type(tensor: torch.Tensor) -> str:
    """The device type every dispatch here reads ("cuda", "cpu", "meta"): the one seam through which
    tests/test_cuda_standin.py runs CPU tensors down the "cuda" path, with mamba_ssm's and causal_conv1d's reference
    functions standing in for their compiled kernels."""
    return tensor.device.type


def _is_tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


@functools.cache
def _announce(operation: str, path: str) -> None:
    logger.info(f"mamba_multimodal: {operation} runs on the {path!r} path")


def _why_not(backend: str, tensor: torch.Tensor, kernel: str) -> str | None:
    """Why a forced `backend` cannot run `kernel` on `tensor`, or None when it can."""
    device = _device_type(tensor)
    if backend in ("cuda", "cpu") and device != backend:
        return f"it runs on {backend.upper()} tensors, got a tensor on {device!r}"
    if backend == "cuda":
        if kernel not in _CUDA_KERNELS:
            return f"mamba_ssm has no CUDA kernel for {kernel} (backend='auto' runs CUDA tensors on the 'pytorch' path)"
        if getattr(cuda_kernels(), kernel, None) is None:
            return "the compiled mamba_ssm extension does not import (see README, 'GPU kernels')"
    if backend == "cpu" and kernel in _CPU_KERNELS and ssm_cpu.load() is None:
        return f"the C++ kernel is unavailable: {ssm_cpu.build_error}"
    return None


def resolve_backend(tensor: torch.Tensor, backend: str = "auto", kernel: str = "selective_scan") -> str:
    """The path an op on `tensor` takes: "cuda", "cpu", "pytorch" or "reference".

    A forced path that cannot run here (a CPU kernel on a CUDA or meta tensor, mamba_ssm without its compiled
    extension, no C++ compiler) raises ValueError naming the backend and the reason.
    """
    _require(backend in BACKENDS, f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        reason = _why_not(backend, tensor, kernel)
        _require(reason is None, f"backend={backend!r} cannot run {kernel}: {reason}")
        path = backend
    elif _is_tracing():
        path = "pytorch"
    elif _device_type(tensor) == "cuda":
        ops = cuda_kernels()
        path = "cuda" if ops is not None and getattr(ops, kernel, None) is not None else "pytorch"
    elif _device_type(tensor) == "cpu" and ssm_cpu.load() is not None:
        path = "cpu"
    else:
        path = "pytorch"
    _announce(kernel, path)
    return path


def _selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state):
    # selective_scan() never routes an initial_state here: mamba_ssm's kernel always starts from zeros. The kernel
    # refuses other dtypes than Δ, B, C, z in u's and A, D, Δ bias in float32; a masked mixer hands a float32 Δ.
    delta, B, C, z = (t if t is None else t.to(u.dtype) for t in (delta, B, C, z))
    A, D, delta_bias = (t if t is None else t.float() for t in (A, D, delta_bias))
    return cuda_kernels().selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def _selective_scan_cpu(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state):
    arguments = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state)
    return SelectiveScanCPU.apply(*arguments)


_SCAN_PATHS = {
    "cuda": _selective_scan_cuda,
    "cpu": _selective_scan_cpu,
    "pytorch": _selective_scan_pytorch,
    "reference": selective_scan_ref,
}


# ------------------------------------------------------------------------------------------ public ops
def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    backend="auto",
    initial_state=None,
):
    """Selective scan with mamba_ssm's `selective_scan_fn` semantics, on the fastest available path.

    Args:
        u, delta, z: (b, d, l).  A: (d, n).  B, C: (b, n, l) input-dependent.  D, delta_bias: (d,).
        backend: "auto" (default), or one of "cuda", "cpu", "pytorch", "reference" to force a path.
        initial_state: h_{-1} (b, d, n), the state before the first step (such as the float32 last state of a scan
            before), or None for zeros; gradients flow into it. Scanning a sequence in pieces, each from the last state
            of the one before, gives the outputs and gradients of one scan over the whole sequence. On CUDA tensors
            it runs on the "pytorch" path: mamba_ssm's kernel always starts from zeros.
    Returns:
        out (b, d, l) in u's dtype (accumulated in float32), and h_l (b, d, n) when `return_last_state`.
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state)
    if initial_state is not None and backend == "auto" and _device_type(u) == "cuda":
        backend = "pytorch"  # mamba_ssm's selective_scan_fn has no initial state; the chunked scan runs on CUDA too
    path = resolve_backend(u, backend, "selective_scan")
    _require(
        not (path == "cuda" and initial_state is not None),
        "backend='cuda' cannot run selective_scan from an initial_state: mamba_ssm's selective_scan_fn always starts "
        "from zeros (backend='auto' runs it on the 'pytorch' path)",
    )
    scan = _SCAN_PATHS[path]
    return scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state)


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """One recurrent step of the selective scan (mamba_ssm's `selective_state_update`); updates `state` in place.

    Args:
        state: (b, d, n).  x, dt, z: (b, d).  A: (d, n).  B, C: (b, n).  D, dt_bias: (d,).
    Returns:
        out (b, d) in x's dtype.
    """
    ops = cuda_kernels() if _device_type(x) == "cuda" and not _is_tracing() else None
    if ops is not None and ops.state_update is not None:
        # mamba_ssm's Triton launcher (2.3) unpacks dt_bias's and D's strides without a None case (its own callers
        # always pass both): zeros leave the step as it is.
        zeros = x.new_zeros(x.shape[-1], dtype=torch.float32)
        dt_bias, D = (zeros if t is None else t for t in (dt_bias, D))
        return ops.state_update(state, x, dt, A, B, C, D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)
    _require(
        state.dim() == 3 and x.dim() == 2,
        f"state must be (b, d, n) and x (b, d), got {tuple(state.shape)}, {tuple(x.shape)}",
    )
    decay, drive = _discretize(x[..., None], dt[..., None], A, B[..., None], dt_bias, dt_softplus)
    new_state = decay[..., 0] * state.float() + drive[..., 0]  #                                  (b, d, n)
    state.copy_(new_state)
    y = torch.einsum("bdn,bn->bd", new_state, _acc(C))  # float64 inputs: a float64 step (tests' ground truth)
    return _finish(y, x, D, z, x.dtype)


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None):
    """Streams new inputs through the causal conv; `conv_state` (b, d, s ≥ k-1) keeps the latest inputs, in place.

    Args:
        x: (b, d) or (b, d, l) new inputs.  weight: (d, k).  bias: (d,).
    Returns:
        outputs shaped like x.
    """
    _require(activation in _CONV_ACTIVATIONS, f"activation must be one of {_CONV_ACTIVATIONS}, got {activation!r}")
    _require(
        conv_state.shape[-1] >= weight.shape[-1] - 1,
        f"conv_state must keep at least k-1 = {weight.shape[-1] - 1} steps, got {conv_state.shape[-1]}",
    )
    ops = cuda_kernels() if _device_type(x) == "cuda" and not _is_tracing() else None
    if ops is not None and ops.conv1d_update is not None:
        return ops.conv1d_update(x, conv_state, weight, bias, activation)
    single_step = x.dim() == 2
    x3 = x[..., None] if single_step else x
    window = torch.cat([conv_state, x3.to(conv_state.dtype)], dim=-1)
    conv_state.copy_(window[..., -conv_state.shape[-1] :])
    if x3.shape[-1] == 1:  # a dot product per channel: F.conv1d's set-up costs more than the step on CPU
        out = (window[..., -weight.shape[-1] :].to(weight.dtype) * weight).sum(-1, keepdim=True)
        out = out if bias is None else out + bias[:, None]
    else:
        out = F.conv1d(window.to(weight.dtype), weight.unsqueeze(1), bias, groups=x3.shape[1])[..., -x3.shape[-1] :]
    out = (F.silu(out) if activation else out).to(x.dtype)
    return out[..., 0] if single_step else out


def project_tokens(linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`linear` over the tokens of channels-first x (b, d, l): (b, l, out), as one (b·l, d) product. Handed the
    transposed view x.transpose(1, 2) itself, torch's matmul cannot fold it to 2-D (nor a (b, 1, d) view whose size-1
    dim has stride 1) and runs a batched product over b expanded copies of the weight: in bf16 on a CPU with AMX those
    copies are made (32 MB a call in MambaVision's last stage at batch 64, 28 ms of a 97 ms forward)."""
    batch, channels, length = x.shape
    return linear(x.transpose(1, 2).reshape(batch * length, channels)).view(batch, length, -1)


__all__ = [
    "BACKENDS",
    "causal_conv1d_update",
    "check_scan_inputs",
    "cuda_kernels",
    "project_tokens",
    "resolve_backend",
    "selective_scan",
    "selective_scan_ref",
    "selective_scan_states",
    "selective_state_update",
]
