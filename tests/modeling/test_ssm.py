"""The SSM core: every path equals the sequential reference, on outputs and on the gradients of every input."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mamba_multimodal.modeling import ssm, ssm_coupled, ssm_cpu

FP32_ATOL = 1e-4  # max-abs error, relative to the scale of the tensor when that exceeds 1 (see assert_close_scaled)
BF16_RTOL = 2e-2
SCAN_ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
FAST_PATHS = ("cpu", "pytorch")
# (b, d, n, l): L=1, odd L, b>1; d: the CPU kernel scans 8 channels together, any left over one by one (19 = 2 × 8 + 3)
SHAPES = [(1, 4, 3, 1), (2, 8, 5, 37), (3, 16, 16, 64), (2, 6, 4, 129), (2, 19, 16, 9)]


def make_scan_inputs(batch, dim, nstate, length, dtype=torch.float32, with_optional=True):
    inputs = {
        "u": torch.randn(batch, dim, length),
        # Without softplus Δ must be positive, or exp(Δ A) > 1 and the state explodes.
        "delta": torch.randn(batch, dim, length) * 0.5 if with_optional else torch.rand(batch, dim, length) * 0.5,
        "A": -torch.rand(dim, nstate) * 2 - 0.1,
        "B": torch.randn(batch, nstate, length),
        "C": torch.randn(batch, nstate, length),
        "D": torch.randn(dim) if with_optional else None,
        "z": torch.randn(batch, dim, length) if with_optional else None,
        "delta_bias": torch.randn(dim) * 0.5 if with_optional else None,
    }
    return {k: None if v is None else v.to(dtype).requires_grad_() for k, v in inputs.items()}


def assert_close_scaled(got, want, atol=FP32_ATOL, name=""):
    """max |got - want| <= atol * max(1, max |want|): fp32 sums of many terms of size ~s are exact to ~1e-6 s."""
    scale = max(1.0, want.abs().max().item())
    error = (got.double() - want.double()).abs().max().item()
    assert error <= atol * scale, f"{name}: max-abs error {error:.2e} > {atol:.0e} x scale {scale:.1f}"


def run_scan(inputs, backend, delta_softplus=True, dtype=None):
    """Output, last state and the gradients of every input of a scalar loss using both outputs."""
    leaves = {k: None if v is None else v.detach().to(dtype or v.dtype).requires_grad_() for k, v in inputs.items()}
    out, last = ssm.selective_scan(**leaves, delta_softplus=delta_softplus, return_last_state=True, backend=backend)
    (out.sin().sum() + last.cos().sum()).backward()
    grads = {k: v.grad for k, v in leaves.items() if v is not None}
    return out, last, grads


@pytest.mark.parametrize("backend", FAST_PATHS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_optional", [True, False])
def test_fast_paths_match_reference_on_outputs_and_gradients(backend, shape, with_optional):
    inputs = make_scan_inputs(*shape, with_optional=with_optional)
    out_ref, last_ref, grads_ref = run_scan(inputs, "reference", delta_softplus=with_optional, dtype=torch.float64)
    for path in (backend, "reference"):  # the fp32 reference is held to the same float64 ground truth
        out, last, grads = run_scan(inputs, path, delta_softplus=with_optional)
        assert out.dtype == torch.float32
        assert_close_scaled(out, out_ref, name=f"{path} output")
        assert_close_scaled(last, last_ref, name=f"{path} last state")
        assert grads.keys() == grads_ref.keys()
        for name in grads:
            assert_close_scaled(grads[name], grads_ref[name], name=f"{path} gradient of {name}")


# Layouts of u, delta and z (b, d, l) as the models hand them over: a projection's (b, l, d) output transposed, one
# half of a (b, l, 2d) one (the mixers' x and gate: not dense), every other step of a longer one.
LAYOUTS = {
    "tokens-last": lambda t: t.transpose(1, 2).contiguous().transpose(1, 2),
    "half-of-tokens-last": lambda t: (
        torch.cat([t, torch.randn_like(t)], dim=1).transpose(1, 2).contiguous().transpose(1, 2)[:, : t.shape[1]]
    ),
    "every-other-step": lambda t: torch.stack([t, torch.randn_like(t)], dim=-1).flatten(-2)[..., ::2],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(2, 19, 16, 9), (1, 8, 4, 3)])
def test_the_cpu_kernel_reads_u_delta_z_in_the_layout_they_come_in(layout, shape):
    """u, delta and z as strided views (the kernel reads them through their strides, without copies): outputs and
    every gradient as the float64 reference's on the same values."""
    inputs = make_scan_inputs(*shape)
    for name in ("u", "delta", "z"):
        strided = LAYOUTS[layout](inputs[name].detach())
        assert torch.equal(strided, inputs[name].detach()) and strided.stride() != inputs[name].stride()
        inputs[name] = strided
    out_ref, last_ref, grads_ref = run_scan(inputs, "reference", dtype=torch.float64)
    out, last, grads = run_scan(inputs, "cpu")
    assert_close_scaled(out, out_ref, name="output")
    assert_close_scaled(last, last_ref, name="last state")
    for name in grads:
        assert_close_scaled(grads[name], grads_ref[name], name=f"gradient of {name}")


@pytest.mark.parametrize("backend", ["reference", *FAST_PATHS])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_optional", [True, False])
def test_scan_from_an_initial_state_matches_reference_on_outputs_and_gradients(backend, shape, with_optional):
    batch, dim, nstate, _ = shape
    inputs = {**make_scan_inputs(*shape, with_optional=with_optional), "initial_state": torch.randn(batch, dim, nstate)}
    out_ref, last_ref, grads_ref = run_scan(inputs, "reference", delta_softplus=with_optional, dtype=torch.float64)
    out, last, grads = run_scan(inputs, backend, delta_softplus=with_optional)
    assert_close_scaled(out, out_ref, name="output")
    assert_close_scaled(last, last_ref, name="last state")
    assert grads.keys() == grads_ref.keys() and "initial_state" in grads
    for name in grads:
        assert_close_scaled(grads[name], grads_ref[name], name=f"gradient of {name}")


@pytest.mark.parametrize("backend", ["reference", *FAST_PATHS])
def test_scan_in_pieces_equals_one_scan_on_outputs_and_gradients(backend):
    """The second piece continues from the first's last state, with autograd through it (continuing from a cache)."""
    inputs = make_scan_inputs(2, 8, 4, 13)
    whole, whole_last, whole_grads = run_scan(inputs, backend)
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    pieces, state = [], None
    for start, stop in ((0, 5), (5, 6), (6, 13)):
        piece = {k: v[..., start:stop] if k in ("u", "delta", "z", "B", "C") else v for k, v in leaves.items()}
        out, state = ssm.selective_scan(
            **piece, delta_softplus=True, return_last_state=True, backend=backend, initial_state=state
        )
        pieces.append(out)
    (torch.cat(pieces, dim=-1).sin().sum() + state.cos().sum()).backward()
    torch.testing.assert_close(torch.cat(pieces, dim=-1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, whole_last, atol=1e-5, rtol=1e-5)
    for name, leaf in leaves.items():
        torch.testing.assert_close(leaf.grad, whole_grads[name], atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("backend", FAST_PATHS)
def test_bf16_inputs_accumulate_in_fp32_and_return_bf16(backend):
    inputs = make_scan_inputs(2, 8, 4, 33, dtype=torch.bfloat16)
    out_ref, last_ref, grads_ref = run_scan(inputs, "reference")
    out, last, grads = run_scan(inputs, backend)
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32
    torch.testing.assert_close(out, out_ref, atol=BF16_RTOL, rtol=BF16_RTOL)
    torch.testing.assert_close(last, last_ref, atol=1e-4, rtol=1e-4)  # both accumulate the same bf16 inputs in fp32
    for name in grads:
        assert grads[name].dtype == torch.bfloat16, name
        torch.testing.assert_close(grads[name], grads_ref[name], atol=BF16_RTOL * 4, rtol=BF16_RTOL, msg=name)


@pytest.mark.skipif(ssm_cpu.load() is None, reason="no C++ kernel here")
@pytest.mark.parametrize("time_major", [False, True], ids=["B-C-contiguous", "B-C-transposed-as-the-mixer-gives"])
@pytest.mark.parametrize("layout", ["contiguous", "tokens-last"], ids=lambda layout: f"u-delta-z-{layout}")
def test_the_kernel_scans_bf16_storage_exactly_as_its_float32_widening(time_major, layout):
    """bf16 storage, float32 accumulation: the kernel's scan of bf16 tensors is its scan of the same values widened
    to float32 (converted in the one copy that lays B and C out time-major), in either layout of B and C, on outputs
    and gradients; only the bf16 output and gradients are rounded."""
    backend = "cpu"
    inputs = make_scan_inputs(2, 8, 4, 33)
    if time_major:  # the mixer's x_proj(...).split(...) gives B and C as (b, l, n), transposed to (b, n, l)
        for name in ("B", "C"):
            inputs[name] = inputs[name].detach().transpose(1, 2).contiguous().transpose(1, 2)
    if layout != "contiguous":
        for name in ("u", "delta", "z"):
            inputs[name] = LAYOUTS[layout](inputs[name].detach())
    stored = {k: v if k in ("A", "D", "delta_bias") else v.detach().bfloat16() for k, v in inputs.items()}
    widened = {k: v.detach().float() for k, v in stored.items()}
    # weights that bf16 holds exactly: both runs then start their backward from the same output gradient
    weights = [torch.randn(2, 8, 33).bfloat16().float(), torch.randn(2, 8, 4)]

    def scan(inputs):
        leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
        out, last = ssm.selective_scan(**leaves, delta_softplus=True, return_last_state=True, backend=backend)
        ((out.float() * weights[0]).sum() + (last * weights[1]).sum()).backward()
        return out, last, {k: v.grad for k, v in leaves.items()}

    out, last, grads = scan(stored)
    out_widened, last_widened, grads_widened = scan(widened)
    torch.testing.assert_close(out, out_widened.bfloat16(), atol=0, rtol=0)
    torch.testing.assert_close(last, last_widened, atol=0, rtol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, grads_widened[name].to(grad.dtype), atol=0, rtol=0, msg=name)


def test_reference_and_the_scan_with_every_state_agree_with_an_independent_float64_loop():
    """The reference and `selective_scan_states` (assisted decoding's rollback), against the equations written out
    step by step in float64, from a nonzero initial state."""
    x = {k: v.detach().double() for k, v in make_scan_inputs(2, 3, 4, 9).items()}
    delta = F.softplus(x["delta"] + x["delta_bias"][:, None])
    initial_state = torch.randn(2, 3, 4, dtype=torch.float64)
    h, expected, expected_states = initial_state, [], []
    for t in range(9):
        h = (
            torch.exp(delta[..., t, None] * x["A"]) * h
            + (delta[..., t] * x["u"][..., t])[..., None] * x["B"][:, None, :, t]
        )
        y = (h * x["C"][:, None, :, t]).sum(-1) + x["D"] * x["u"][..., t]
        expected.append(y * F.silu(x["z"][..., t]))
        expected_states.append(h)
    inputs = [x[k].float() for k in SCAN_ARGS]
    out = ssm.selective_scan_ref(*inputs, delta_softplus=True, initial_state=initial_state.float())
    torch.testing.assert_close(out.double(), torch.stack(expected, -1), atol=1e-5, rtol=1e-5)
    out, states = ssm.selective_scan_states(*inputs, delta_softplus=True, initial_state=initial_state.float())
    torch.testing.assert_close(out.double(), torch.stack(expected, -1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(states).double(), torch.stack(expected_states), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["auto", "pytorch", "reference"])
def test_recurrent_steps_equal_the_scan(backend):
    inputs = {k: v.detach() for k, v in make_scan_inputs(2, 8, 4, 11).items()}
    out, last = ssm.selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend=backend)
    state = torch.zeros(2, 8, 4)
    steps = [
        ssm.selective_state_update(
            state,
            inputs["u"][..., t],
            inputs["delta"][..., t],
            inputs["A"],
            inputs["B"][..., t],
            inputs["C"][..., t],
            inputs["D"],
            z=inputs["z"][..., t],
            dt_bias=inputs["delta_bias"],
            dt_softplus=True,
        )
        for t in range(11)
    ]
    torch.testing.assert_close(torch.stack(steps, -1), out, atol=FP32_ATOL, rtol=0)
    torch.testing.assert_close(state, last, atol=FP32_ATOL, rtol=0)


# ------------------------------------------------------------------------------------- causal conv1d
def causal_conv_by_direct_sum(x, weight, bias=None):
    """out_t = Σ_j weight_j x_{t-k+1+j} + bias, with zeros before the sequence: (b, d, l), (d, k), (d,) → (b, d, l)."""
    kernel_size = weight.shape[-1]
    padded = F.pad(x, (kernel_size - 1, 0))
    out = torch.stack([(padded[..., t : t + kernel_size] * weight).sum(-1) for t in range(x.shape[-1])], dim=-1)
    return out if bias is None else out + bias[:, None]


def test_causal_conv1d_update_streams_a_direct_sum():
    x, weight, bias = torch.randn(2, 5, 12), torch.randn(5, 4), torch.randn(5)
    direct = causal_conv_by_direct_sum(x, weight, bias)
    conv_state = torch.zeros(2, 5, 3)  # k-1 steps of history, in place
    streamed = [ssm.causal_conv1d_update(x[..., t], conv_state, weight, bias) for t in range(12)]
    torch.testing.assert_close(torch.stack(streamed, -1), direct, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv_state, x[..., -3:])
    conv_state.zero_()
    gated = ssm.causal_conv1d_update(x, conv_state, weight, bias, activation="silu")
    torch.testing.assert_close(gated, F.silu(direct), atol=1e-5, rtol=1e-5)


def test_causal_conv1d_update_takes_several_steps_at_once():
    x, weight = torch.randn(1, 3, 10), torch.randn(3, 4)
    conv_state = torch.zeros(1, 3, 4)
    first = ssm.causal_conv1d_update(x[..., :6], conv_state, weight)
    second = ssm.causal_conv1d_update(x[..., 6:], conv_state, weight)
    direct = causal_conv_by_direct_sum(x, weight)
    torch.testing.assert_close(torch.cat([first, second], -1), direct, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------- dispatch, errors
def test_auto_picks_the_compiled_cpu_kernel_and_tracing_picks_pytorch():
    u = torch.randn(1, 2, 3)
    assert ssm_cpu.load() is not None, "the CPU kernel should build on a machine with a C++ compiler"
    assert ssm.resolve_backend(u) == "cpu"
    seen = []

    def record_path(tensor):
        seen.append(ssm.resolve_backend(tensor))
        return tensor * 2

    torch.jit.trace(record_path, (u,), check_trace=False)
    assert seen == ["pytorch"]


def test_the_path_is_logged_once(caplog):
    ssm._announce.cache_clear()
    inputs = {k: v.detach() for k, v in make_scan_inputs(1, 4, 2, 5).items()}
    with caplog.at_level("INFO", logger="mamba_multimodal"):
        ssm.selective_scan(**inputs)
        ssm.selective_scan(**inputs)
    assert [r.getMessage() for r in caplog.records] == ["mamba_multimodal: selective_scan runs on the 'cpu' path"]


def test_without_a_compiler_auto_falls_back_to_pytorch(monkeypatch):
    monkeypatch.setattr(ssm_cpu, "load", lambda: None)
    inputs = {k: v.detach() for k, v in make_scan_inputs(1, 4, 2, 5).items()}
    assert ssm.resolve_backend(inputs["u"]) == "pytorch"
    torch.testing.assert_close(ssm.selective_scan(**inputs), ssm.selective_scan_ref(**inputs), atol=FP32_ATOL, rtol=0)


def meta_inputs(op):
    """Arguments of `op` on the meta device: shapes without data, where no kernel may dereference a pointer."""
    meta = {k: v.detach().to("meta") for k, v in make_scan_inputs(2, 8, 4, 5).items()}
    if op == "coupled_scan":
        return {k: v[None] for k, v in meta.items()}
    return meta


SCANS = {"selective_scan": ssm.selective_scan, "coupled_scan": ssm_coupled.coupled_scan}


@pytest.mark.parametrize("op", SCANS)
@pytest.mark.parametrize(("backend", "device"), [("cpu", "meta"), ("cuda", "meta"), ("cuda", "cpu")])
def test_a_forced_backend_on_the_wrong_device_raises_naming_it_and_why(op, backend, device):
    """It used to crash the process (the CPU kernel reading a meta pointer: exit 139) or raise AttributeError."""
    inputs = meta_inputs(op)
    if device == "cpu":
        inputs = {k: torch.zeros(v.shape) for k, v in inputs.items()}
    reason = f"it runs on {backend.upper()} tensors, got a tensor on '{device}'"
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run {op}: {reason}"):
        SCANS[op](**inputs, backend=backend)


@pytest.mark.parametrize("op", SCANS)
@pytest.mark.parametrize("backend", ["pytorch", "reference"])
def test_the_plain_pytorch_paths_run_on_any_device(op, backend):
    out = SCANS[op](**meta_inputs(op), backend=backend)
    assert out.device.type == "meta"


def test_forcing_cuda_without_its_kernels_raises_naming_the_reason():
    cuda_tensor = SimpleNamespace(is_cuda=True, device=torch.device("cuda"))  # no GPU here: only what dispatch reads
    with pytest.raises(ValueError, match="backend='cuda' cannot run selective_scan: the compiled mamba_ssm"):
        ssm.resolve_backend(cuda_tensor, "cuda", "selective_scan")
    with pytest.raises(ValueError, match="backend='cuda' cannot run coupled_scan: mamba_ssm has no CUDA kernel"):
        ssm.resolve_backend(cuda_tensor, "cuda", "coupled_scan")


def test_cuda_is_never_given_an_initial_state(monkeypatch):
    """mamba_ssm's selective_scan_fn has no initial state: forcing it with one raises, it is not silently dropped."""
    inputs = {k: v.detach() for k, v in make_scan_inputs(2, 8, 4, 5).items()}
    monkeypatch.setattr(ssm, "resolve_backend", lambda *args: "cuda")
    with pytest.raises(ValueError, match="backend='cuda' cannot run selective_scan from an initial_state"):
        ssm.selective_scan(**inputs, backend="cuda", initial_state=torch.zeros(2, 8, 4))


@pytest.mark.parametrize("op", SCANS)
def test_forcing_cpu_without_a_compiled_kernel_raises_naming_the_reason(op, monkeypatch):
    monkeypatch.setattr(ssm_cpu, "load", lambda: None)
    monkeypatch.setattr(ssm_cpu, "build_error", "no C++ compiler found (set CXX)")
    inputs = {k: torch.zeros(v.shape) for k, v in meta_inputs(op).items()}
    with pytest.raises(ValueError, match=rf"backend='cpu' cannot run {op}: the C\+\+ kernel is unavailable: no C\+\+"):
        SCANS[op](**inputs, backend="cpu")


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("u", torch.randn(2, 8), "u must be 3-D"),
        ("delta", torch.randn(2, 8, 6), r"delta must have shape \(batch, channels, length\)"),
        ("A", torch.randn(7, 4), r"A must have shape \(channels, state\)"),
        ("B", torch.randn(2, 4, 6, 1), r"B must have shape \(batch, state, length\)"),
        ("C", torch.randn(2, 3, 5), r"C must have shape \(batch, state, length\)"),
        ("D", torch.randn(9), r"D must have shape \(channels,\)"),
        ("z", torch.randn(1, 8, 5), r"z must have shape"),
        ("delta_bias", torch.randn(8, 1), r"delta_bias must have shape"),
        ("initial_state", torch.randn(2, 8, 5), r"initial_state must have shape \(batch, channels, state\)"),
    ],
)
def test_wrong_shapes_raise_a_clear_error(name, bad, message):
    inputs = {k: v.detach() for k, v in make_scan_inputs(2, 8, 4, 5).items()}
    inputs[name] = bad
    with pytest.raises(ValueError, match=message):
        ssm.selective_scan(**inputs)


def test_wrong_dtypes_and_empty_sequences_raise_a_clear_error():
    inputs = {k: v.detach() for k, v in make_scan_inputs(2, 8, 4, 5).items()}
    with pytest.raises(TypeError, match="u must be a floating-point tensor"):
        ssm.selective_scan(**{**inputs, "u": inputs["u"].long()})
    with pytest.raises(ValueError, match="at least one time step"):
        ssm.selective_scan(**{**inputs, "u": torch.randn(2, 8, 0)})
    with pytest.raises(ValueError, match="backend must be one of"):
        ssm.selective_scan(**inputs, backend="triton")
    with pytest.raises(ValueError, match="activation must be one of"):
        ssm.causal_conv1d_update(torch.randn(1, 2), torch.zeros(1, 2, 1), torch.randn(2, 2), activation="relu")


# ------------------------------------------------------------------------------------------- coupled scan
def make_coupled_inputs(modalities=3, batch=2, dim=5, nstate=4, length=17, contracting=True):
    """Inputs of `coupled_scan`. With `contracting`, every exp(Δ A) < 1/M so that Eq. 6's summed state stays bounded
    (with M decays near 1 it grows like M^t and no two float32 paths can agree)."""
    A = -torch.rand(modalities, dim, nstate) * 2 - (2.5 if contracting else 0.1)
    return {
        "u": torch.randn(modalities, batch, dim, length),
        "delta": torch.randn(modalities, batch, dim, length) * 0.5,
        "A": A,
        "B": torch.randn(modalities, batch, nstate, length),
        "C": torch.randn(modalities, batch, nstate, length),
        "D": torch.randn(modalities, dim),
        "z": torch.randn(modalities, batch, dim, length),
        "delta_bias": torch.randn(modalities, dim) * 0.5,
    }


def run_coupled(inputs, backend, coupling, dtype=torch.float32):
    leaves = {k: v.detach().to(dtype).requires_grad_() for k, v in inputs.items()}
    out, last = ssm_coupled.coupled_scan(
        **leaves, delta_softplus=True, coupling=coupling, return_last_state=True, backend=backend
    )
    (out.sin().sum() + last.cos().sum()).backward()
    return out, last, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("backend", FAST_PATHS)
@pytest.mark.parametrize("coupling", ssm_coupled.COUPLINGS)
@pytest.mark.parametrize(("dim", "length"), [(5, 1), (5, 17), (19, 9)])  # 19 channels: two blocks of eight and three
def test_coupled_scan_fast_paths_match_reference(backend, coupling, dim, length):
    inputs = make_coupled_inputs(dim=dim, length=length)
    out_ref, last_ref, grads_ref = run_coupled(inputs, "reference", coupling, dtype=torch.float64)
    out, last, grads = run_coupled(inputs, backend, coupling)
    assert_close_scaled(out, out_ref, name="output")
    assert_close_scaled(last, last_ref, name="carried state")
    for name in SCAN_ARGS:
        assert_close_scaled(grads[name], grads_ref[name], name=f"gradient of {name}")


def carried_state(coupling, modalities=3, batch=2, dim=5, nstate=4):
    return torch.randn(*(() if coupling != "none" else (modalities,)), batch, dim, nstate)


@pytest.mark.parametrize("backend", FAST_PATHS)
@pytest.mark.parametrize("coupling", ssm_coupled.COUPLINGS)
@pytest.mark.parametrize("dim", [5, 19])
def test_coupled_scan_from_an_initial_state_matches_reference(backend, coupling, dim):
    inputs = {**make_coupled_inputs(dim=dim, length=7), "initial_state": carried_state(coupling, dim=dim)}
    out_ref, last_ref, grads_ref = run_coupled(inputs, "reference", coupling, dtype=torch.float64)
    out, last, grads = run_coupled(inputs, backend, coupling)
    assert_close_scaled(out, out_ref, name="output")
    assert_close_scaled(last, last_ref, name="carried state")
    for name in [*SCAN_ARGS, "initial_state"]:
        assert_close_scaled(grads[name], grads_ref[name], name=f"gradient of {name}")


@pytest.mark.parametrize("backend", ["reference", *FAST_PATHS])
@pytest.mark.parametrize("coupling", ssm_coupled.COUPLINGS)
def test_coupled_scan_in_pieces_equals_one_scan(backend, coupling):
    x = make_coupled_inputs(length=13)
    whole, whole_last = ssm_coupled.coupled_scan(
        **x, delta_softplus=True, coupling=coupling, return_last_state=True, backend=backend
    )
    pieces, state = [], None
    for start, stop in ((0, 5), (5, 6), (6, 13)):
        piece = {k: v[..., start:stop] if v.dim() == 4 else v for k, v in x.items()}
        out, state = ssm_coupled.coupled_scan(
            **piece, delta_softplus=True, coupling=coupling, return_last_state=True, backend=backend,
            initial_state=state,
        )  # fmt: skip
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, whole_last, atol=1e-5, rtol=1e-5)


def test_coupled_scan_sum_is_eq6_written_out():
    """h^m_t = exp(Δ^m_t A^m) ⊙ Σ_m' h^m'_{t-1} + Δ^m_t B^m_t x^m_t ; y^m_t = C^m_t · h^m_t + D^m x^m_t, gated."""
    x = {k: v.double() for k, v in make_coupled_inputs(modalities=2, length=6).items()}
    delta = F.softplus(x["delta"] + x["delta_bias"][:, None, :, None])
    h = torch.zeros(2, 2, 5, 4, dtype=torch.float64)  # (M, b, d, n)
    expected = torch.zeros(2, 2, 5, 6, dtype=torch.float64)
    for t in range(6):
        previous_sum = h.sum(0)
        for m in range(2):
            decay = torch.exp(delta[m, ..., t, None] * x["A"][m])
            drive = (delta[m, ..., t] * x["u"][m, ..., t])[..., None] * x["B"][m, :, None, :, t]
            h[m] = decay * previous_sum + drive
            y = (h[m] * x["C"][m, :, None, :, t]).sum(-1) + x["D"][m] * x["u"][m, ..., t]
            expected[m, ..., t] = y * F.silu(x["z"][m, ..., t])
    for backend in ("reference", "cpu", "pytorch"):
        out = ssm_coupled.coupled_scan(**{k: v.float() for k, v in x.items()}, delta_softplus=True, backend=backend)
        torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5, msg=backend)


def test_uncoupled_scan_is_independent_mamba_scans():
    inputs = make_coupled_inputs(contracting=False)
    out = ssm_coupled.coupled_scan(**inputs, delta_softplus=True, coupling="none")
    for m in range(3):
        alone = ssm.selective_scan(**{k: v[m] for k, v in inputs.items()}, delta_softplus=True)
        torch.testing.assert_close(out[m], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("coupling", ssm_coupled.COUPLINGS)
def test_coupling_carries_one_modality_into_another(coupling):
    """Modality 0's output at t=10 depends on modality 1's input at t=2 exactly when the states are coupled."""
    inputs = make_coupled_inputs(length=12, contracting=False)
    u = inputs.pop("u").requires_grad_()
    out = ssm_coupled.coupled_scan(u, **inputs, delta_softplus=True, coupling=coupling)
    (influence,) = torch.autograd.grad(out[0, :, :, 10].sum(), u)
    crossed = influence[1, :, :, 2].abs().max().item()
    assert (crossed > 1e-6) == (coupling != "none"), f"{coupling}: d out0[10] / d u1[2] = {crossed}"


@pytest.mark.parametrize("coupling", ssm_coupled.COUPLINGS)
def test_coupled_steps_equal_the_scan(coupling):
    x = make_coupled_inputs(length=9)
    out, last = ssm_coupled.coupled_scan(**x, delta_softplus=True, coupling=coupling, return_last_state=True)
    state = torch.zeros(3, 2, 5, 4) if coupling == "none" else torch.zeros(2, 5, 4)
    for t in range(9):
        step = ssm_coupled.coupled_state_update(
            state,
            x["u"][..., t],
            x["delta"][..., t],
            x["A"],
            x["B"][..., t],
            x["C"][..., t],
            x["D"],
            z=x["z"][..., t],
            dt_bias=x["delta_bias"],
            dt_softplus=True,
            coupling=coupling,
        )
        torch.testing.assert_close(step, out[..., t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, last, atol=1e-5, rtol=1e-5)


def test_coupled_scan_rejects_bad_inputs():
    x = make_coupled_inputs()
    with pytest.raises(ValueError, match="coupling must be one of"):
        ssm_coupled.coupled_scan(**x, coupling="product")
    with pytest.raises(ValueError, match="u must be 4-D"):
        ssm_coupled.coupled_scan(**{**x, "u": x["u"][0]})
    with pytest.raises(ValueError, match="B must start with the modality axis M = 3"):
        ssm_coupled.coupled_scan(**{**x, "B": x["B"][:2]})
    with pytest.raises(ValueError, match=r"C must have shape \(batch, state, length\)"):
        ssm_coupled.coupled_scan(**{**x, "C": x["C"][..., :5]})
    with pytest.raises(ValueError, match=r"initial_state must have shape the carried state for 'none'"):
        ssm_coupled.coupled_scan(**x, coupling="none", initial_state=torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="state must have shape"):
        ssm_coupled.coupled_state_update(
            torch.zeros(2, 5, 4),
            *(x[k][..., 0] for k in ("u", "delta")),
            x["A"],
            x["B"][..., 0],
            x["C"][..., 0],
            coupling="none",
        )
