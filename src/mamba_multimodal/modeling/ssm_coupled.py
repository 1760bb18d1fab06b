"""Coupled Mamba's scan: M selective scans whose states are coupled (arXiv 2405.18014, Eq. 6).

    h^m_t = exp(Δ^m_t A^m) ⊙ c_{t-1} + Δ^m_t B^m_t x^m_t ,  c_t = Σ_m h^m_t ("sum"), its mean ("mean"), or c^m = h^m
    ("none": M independent Mamba scans);  y^m_t = C^m_t · h^m_t + D^m x^m_t ,  out^m_t = y^m_t · silu(z^m_t)

Shapes are `ssm.py`'s with a leading modality axis M. `coupled_scan` runs on the paths of `ssm.resolve_backend`:
"cpu", one fused kernel of `ssm_cpu.cpp` that never materialises a (b, d, n, l) tensor; "pytorch", the coupled
state as one diagonal recurrence on `ssm.py`'s chunked scan (also for CUDA tensors: mamba_ssm has no coupled kernel);
"reference", `coupled_scan_ref`, Eq. 6 step by step. `coupled_state_update` is one step, for streaming inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..configuration.validation import COUPLINGS  # the choices of CoupledMambaConfig.coupling
from .ssm import (
    _acc,
    _check_float,
    _check_shape,
    _Chunks,
    _device_type,
    _discretize,
    _require,
    _scan_chunks,
    check_scan_inputs,
    resolve_backend,
)
from .ssm_cpu import CoupledScanCPU

SCAN_ARGUMENTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def check_coupled_inputs(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, coupling="sum", initial_state=None
) -> None:
    """Like `check_scan_inputs`, with a leading modality axis M on every argument; initial_state is the carried
    state, (b, d, n) when coupled and (M, b, d, n) for "none"."""
    _require(coupling in COUPLINGS, f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    _check_float("u", u)
    _require(u.dim() == 4, f"u must be 4-D (modalities, batch, channels, length), got shape {tuple(u.shape)}")
    modalities = u.shape[0]
    for name, tensor in zip(SCAN_ARGUMENTS, (u, delta, A, B, C, D, z, delta_bias), strict=True):
        if tensor is not None:
            _check_float(name, tensor)
            _require(
                tensor.shape[0] == modalities,
                f"{name} must start with the modality axis M = {modalities}, got shape {tuple(tensor.shape)}",
            )
    for m in range(modalities):
        check_scan_inputs(*(None if t is None else t[m] for t in (u, delta, A, B, C, D, z, delta_bias)))
    if initial_state is not None:
        _check_shape(
            "initial_state", initial_state, _carried_shape(u, A, coupling), f"the carried state for {coupling!r}"
        )


def _carried_shape(u, A, coupling) -> tuple[int, ...]:
    """(b, d, n) when coupled, (M, b, d, n) for "none"."""
    return (*u.shape[int(coupling != "none") : 3], A.shape[-1])


def _discretize_modalities(u, delta, A, B, delta_bias, delta_softplus):
    """Per-modality decay and drive, both (M, b, d, n, l)."""
    pairs = [
        _discretize(u[m], delta[m], A[m], B[m], None if delta_bias is None else delta_bias[m], delta_softplus)
        for m in range(u.shape[0])
    ]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _finish_modalities(y, u, D, z, out_dtype):
    """y + D x, gated by silu(z), for (M, b, d, l) tensors; D: (M, d)."""
    if D is not None:
        y = y + _acc(u) * _acc(D)[:, None, :, None]
    if z is not None:
        y = y * F.silu(_acc(z))
    return y.to(out_dtype)


def coupled_scan_ref(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    coupling="sum",
    return_last_state=False,
    initial_state=None,
):
    """The sequential definition of `coupled_scan`: Eq. 6 of Coupled Mamba written out step by step."""
    check_coupled_inputs(u, delta, A, B, C, D, z, delta_bias, coupling, initial_state)
    decay, drive = _discretize_modalities(u, delta, A, B, delta_bias, delta_softplus)  #        (M, b, d, n, l)
    shape = decay.shape[1:4] if coupling != "none" else decay.shape[:4]
    carried = decay.new_zeros(shape) if initial_state is None else _acc(initial_state)
    outputs = []
    for decay_t, drive_t, C_t in zip(decay.unbind(-1), drive.unbind(-1), _acc(C).unbind(-1), strict=True):
        states = decay_t * carried + drive_t  #                                                      (M, b, d, n)
        outputs.append(torch.einsum("mbdn,mbn->mbd", states, C_t))
        carried = {"sum": states.sum(0), "mean": states.mean(0), "none": states}[coupling]
    out = _finish_modalities(torch.stack(outputs, dim=-1), u, D, z, u.dtype)
    return (out, carried) if return_last_state else out


def _diagonal_recurrence(a, b, initial_state):
    """h_t = a_t ⊙ h_{t-1} + b_t along the last axis, for any per-step decay a_t: the chunked scan of `ssm.py` in
    O(√l) Python steps; traceable (ONNX, torch.compile).

    Args:
        a, b: (..., l).  initial_state: (...) or None (zeros).
    Returns:
        h: (..., l).
    """
    chunks = _Chunks(a.shape[-1])
    return chunks.merge(_scan_chunks(chunks.split(a, 1.0), chunks.split(b), initial_state))


def _coupled_scan_pytorch(
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, coupling, return_last_state, initial_state
):
    """The coupled state c_t = P_t ⊙ c_{t-1} + U_t (P = w Σ_m exp(Δ^m A^m), U = w Σ_m Δ^m B^m x^m) is one diagonal
    recurrence with a time-varying decay; each modality's state then follows as exp(Δ^m A^m) ⊙ c_{t-1} + Δ^m B^m x^m."""
    decay, drive = _discretize_modalities(u, delta, A, B, delta_bias, delta_softplus)  #        (M, b, d, n, l)
    initial_state = None if initial_state is None else _acc(initial_state)
    if coupling == "none":
        states = _diagonal_recurrence(decay, drive, initial_state)
        last = states[..., -1]
    else:
        weight = 1.0 if coupling == "sum" else 1.0 / u.shape[0]
        carried = _diagonal_recurrence(weight * decay.sum(0), weight * drive.sum(0), initial_state)  # (b,d,n,l)
        before = torch.zeros_like(carried[..., :1]) if initial_state is None else initial_state[..., None]
        entering = torch.cat([before, carried[..., :-1]], dim=-1)  #                                   c_{t-1}
        states = decay * entering + drive
        last = carried[..., -1]
    y = torch.einsum("mbdnl,mbnl->mbdl", states, _acc(C))
    out = _finish_modalities(y, u, D, z, u.dtype)
    return (out, last) if return_last_state else out


def coupled_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    coupling="sum",
    return_last_state=False,
    backend="auto",
    initial_state=None,
):
    """M selective scans whose states are coupled (Coupled Mamba, arXiv 2405.18014, Eq. 6).

    Args:
        u, delta, z: (M, b, d, l).  A: (M, d, n).  B, C: (M, b, n, l).  D, delta_bias: (M, d).
        coupling: "sum" (Eq. 6: every modality continues from Σ_m h^m_{t-1}), "mean" (from its mean, which keeps the
            state bounded), or "none" (each modality continues from its own state: M independent Mamba scans).
        initial_state: the carried state before the first step, (b, d, n) when coupled, (M, b, d, n) for "none";
            None for zeros. Scanning a sequence in pieces, each from the last state of the one before, gives the
            outputs of one scan over the whole sequence.
    Returns:
        out (M, b, d, l) in u's dtype, and the carried state after the last step when `return_last_state`:
        (b, d, n) when coupled, (M, b, d, n) for "none", in float32.
    """
    check_coupled_inputs(u, delta, A, B, C, D, z, delta_bias, coupling, initial_state)
    path = resolve_backend(u, "pytorch" if backend == "auto" and _device_type(u) == "cuda" else backend, "coupled_scan")
    arguments = (u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if path == "cpu":
        weight = 1.0 / u.shape[0] if coupling == "mean" else 1.0
        return CoupledScanCPU.apply(*arguments, coupling != "none", weight, initial_state, return_last_state)
    if path == "reference":
        return coupled_scan_ref(*arguments, coupling, return_last_state, initial_state)
    # "pytorch", also for CUDA tensors: mamba_ssm has no coupled kernel
    return _coupled_scan_pytorch(*arguments, coupling, return_last_state, initial_state)


def coupled_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, coupling="sum"):
    """One step of `coupled_scan` for streaming inference; updates `state` in place.

    Args:
        state: (b, d, n) when coupled, (M, b, d, n) for "none".  x, dt, z: (M, b, d).  A: (M, d, n).
        B, C: (M, b, n).  D, dt_bias: (M, d).
    Returns:
        out (M, b, d) in x's dtype.
    """
    _require(coupling in COUPLINGS, f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    expected = (*x.shape[int(coupling != "none") :], A.shape[-1])
    _require(
        tuple(state.shape) == expected,
        f"state must have shape {expected} for coupling={coupling!r}, got {tuple(state.shape)}",
    )
    decay, drive = _discretize_modalities(
        x[..., None], dt[..., None], A, B[..., None], dt_bias, dt_softplus
    )  #                                                                                     (M, b, d, n, 1)
    states = decay[..., 0] * _acc(state) + drive[..., 0]  #                                        (M, b, d, n)
    state.copy_({"sum": states.sum(0), "mean": states.mean(0), "none": states}[coupling])
    y = torch.einsum("mbdn,mbn->mbd", states, _acc(C))
    return _finish_modalities(y[..., None], x[..., None], D, None if z is None else z[..., None], x.dtype)[..., 0]


__all__ = ["COUPLINGS", "check_coupled_inputs", "coupled_scan", "coupled_scan_ref", "coupled_state_update"]
