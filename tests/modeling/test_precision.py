"""The bf16 policy (`modeling.precision`): which CPUs count as having native bf16, the one warning on those that do
not, the cases the generic tests over every family (tests/test_families.py, "bf16") leave out (bf16 inputs,
accelerate's `--bf16` wrapper around the forward, gradient checkpointing over bf16 weights), and the per-op bf16
tolerance the README states."""

import logging
import platform
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from mamba_multimodal.modeling import precision, ssm
from mamba_multimodal.registry import FAMILIES

X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c\n"
X86_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.fixture
def fresh_detection():
    precision.native_bf16_flags.cache_clear()
    precision._warn_float32_fallback.cache_clear()
    yield
    precision.native_bf16_flags.cache_clear()
    precision._warn_float32_fallback.cache_clear()


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "expected"),
    [("x86_64", X86_AVX2, ()), ("x86_64", X86_AMX, ("avx512_bf16", "amx_bf16")), ("aarch64", ARM_BF16, ("bf16",)),
     ("aarch64", X86_AVX2, ())],
)  # fmt: skip
def test_native_bf16_is_read_from_the_cpus_flags(machine, cpuinfo, expected, monkeypatch, fresh_detection):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)  # the /proc/cpuinfo path (older torch)
    monkeypatch.setattr(precision, "Path", lambda _: type("Text", (), {"read_text": lambda self: cpuinfo})())
    assert precision.native_bf16_flags() == expected
    assert precision.has_native_bf16() == bool(expected)


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads /proc/cpuinfo")
def test_this_cpu_is_detected_as_its_cpuinfo_says(fresh_detection):
    flags = precision.cpuinfo_flags(Path("/proc/cpuinfo").read_text())
    wanted = precision.NATIVE_BF16_FLAGS.get(precision.architecture(), ())
    assert precision.has_native_bf16() == any(flag in flags for flag in wanted)


X86_AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16\n"


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "expected"),
    [("x86_64", X86_AVX512_BF16, True), ("x86_64", X86_AMX, False), ("aarch64", ARM_BF16, False)],
)
def test_attention_runs_bf16_in_float32_on_x86_without_amx(machine, cpuinfo, expected, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(precision, "Path", lambda _: type("Text", (), {"read_text": lambda self: cpuinfo})())
    precision.bf16_attention_in_float32.cache_clear()
    try:
        assert precision.bf16_attention_in_float32() is expected
    finally:
        precision.bf16_attention_in_float32.cache_clear()


@pytest.mark.parametrize("in_float32", [True, False])
def test_attention_of_bf16_computes_where_the_cpu_runs_it_faster(in_float32, monkeypatch):
    """bf16 tensors and bf16 autocast: float32 copies where `bf16_attention_in_float32`, torch's bf16 kernel
    elsewhere; bf16 out either way. float32 tensors outside autocast are torch's float32 attention."""
    monkeypatch.setattr(precision, "bf16_attention_in_float32", lambda: in_float32)
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 3, 10, 16).bfloat16() for _ in range(3))
    widened = F.scaled_dot_product_attention(query.float(), key.float(), value.float()).bfloat16()
    expected = widened if in_float32 else F.scaled_dot_product_attention(query, key, value)
    assert torch.equal(precision.scaled_dot_product_attention(query, key, value), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = precision.scaled_dot_product_attention(query.float(), key.float(), value.float())
        expected = widened if in_float32 else F.scaled_dot_product_attention(query.float(), key.float(), value.float())
    assert autocast.dtype == torch.bfloat16 and torch.equal(autocast, expected)
    floats = [tensor.float() for tensor in (query, key, value)]
    assert torch.equal(precision.scaled_dot_product_attention(*floats), F.scaled_dot_product_attention(*floats))


def tiny(family: str, auto_name: str):
    torch.manual_seed(0)
    family = FAMILIES[family]
    return family.auto_models[auto_name](family.tiny_config()).eval()


def pixel_inputs(model, batch=2) -> dict:
    size = model.config.image_size
    return {"pixel_values": torch.randn(batch, 3, size, size), "labels": torch.tensor([0, 1][:batch])}


def fallback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == precision.__name__ and r.levelno == logging.WARNING]


def test_the_fallback_is_announced_once_naming_the_missing_instructions(monkeypatch, caplog, fresh_detection):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    model = tiny("mambavision", "AutoModelForImageClassification")
    inputs = pixel_inputs(model)
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        model(**inputs)  # float32 without autocast: nothing to say
        assert not fallback_warnings(caplog)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(**inputs)
            model(**inputs)
        model.bfloat16()(**inputs)
    (warning,) = fallback_warnings(caplog)
    assert "avx512_bf16 or amx_bf16" in warning and "float32" in warning


def test_a_cpu_with_native_bf16_hears_nothing(monkeypatch, caplog, fresh_detection):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: True)
    model = tiny("mambavision", "AutoModelForImageClassification")
    with caplog.at_level(logging.WARNING, logger=precision.__name__), torch.autocast("cpu", dtype=torch.bfloat16):
        model(**pixel_inputs(model))
    assert not fallback_warnings(caplog)


def test_bf16_inputs_under_autocast_are_widened_for_float32_weights(monkeypatch):
    """Coupled Mamba's feature processor can hand bf16 features (dtype="bfloat16"); autocast took them on any CPU."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    model = tiny("coupled_mamba", "AutoModelForSequenceClassification")
    sizes = zip(model.config.modalities, model.config.input_sizes, strict=True)
    features = {f"{modality}_features": torch.randn(2, 5, size) for modality, size in sizes}
    rounded = {name: value.bfloat16() for name, value in features.items()}
    with torch.no_grad():
        expected = model(**{name: value.float() for name, value in rounded.items()}).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(**rounded).logits
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, atol=0, rtol=0)


@pytest.fixture
def fresh_accelerator_state():
    """accelerate's process-wide state, reset before and after: an Accelerator of another precision made by an earlier
    test would refuse this test's, and this test's bf16 one a later test's."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.mark.parametrize("native", [False, True])
def test_accelerates_bf16_wrapper_meets_the_policy_inside_the_forward(native, monkeypatch, fresh_accelerator_state):
    """Trainer's `--bf16` on CPU: accelerate wraps `model.forward` in bf16 autocast; the policy runs inside it."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: native)
    model = tiny("mambavision", "AutoModelForImageClassification")
    inputs = pixel_inputs(model)
    with torch.no_grad():
        expected = model(**inputs).logits
        prepared = Accelerator(mixed_precision="bf16", cpu=True).prepare_model(model)
        logits = prepared(**inputs).logits
    if native:
        assert not torch.equal(logits, expected)  # bf16 matmuls ran
        torch.testing.assert_close(logits, expected, atol=5e-2 * expected.abs().max().item(), rtol=0)
    else:
        torch.testing.assert_close(logits, expected, atol=0, rtol=0)


def test_bf16_weights_compute_exactly_as_float32_on_the_rounded_weights(monkeypatch):
    """Without native bf16, a forward that keeps no cache runs on float32 copies of the bf16 weights: bit for bit the
    float32 model with the same rounded weights, its outputs rounded to bf16 once. The model keeps its own bf16
    parameters, and BatchNorm's running statistics (updated in training) reach them."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    model = tiny("mambavision", "AutoModelForImageClassification").bfloat16()
    reference = tiny("mambavision", "AutoModelForImageClassification").bfloat16().float()
    parameters = dict(model.named_parameters())
    inputs = pixel_inputs(model)
    with torch.no_grad():
        output = model(pixel_values=inputs["pixel_values"].bfloat16(), labels=inputs["labels"])
        expected = reference(pixel_values=inputs["pixel_values"].bfloat16().float(), labels=inputs["labels"])
    assert output.logits.dtype == output.loss.dtype == torch.bfloat16
    torch.testing.assert_close(output.logits, expected.logits.bfloat16(), atol=0, rtol=0)
    torch.testing.assert_close(output.loss, expected.loss.bfloat16(), atol=0, rtol=0)
    assert dict(model.named_parameters()) == parameters  # the same Parameter objects, still bf16
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())

    model.train(), reference.train()
    with torch.no_grad():
        model(pixel_values=inputs["pixel_values"].bfloat16())
        reference(pixel_values=inputs["pixel_values"].bfloat16().float())
    statistics = {n: b for n, b in model.named_buffers() if "running" in n}
    assert statistics and all(b.dtype == torch.bfloat16 for b in statistics.values())
    for name, expected_buffer in reference.named_buffers():
        if name in statistics:
            torch.testing.assert_close(statistics[name], expected_buffer.bfloat16(), atol=0, rtol=0, msg=name)


@pytest.mark.parametrize("case", ["another thread on swapped weights", "weights over the swap limit"])
def test_float32_activations_widen_op_by_op_where_the_weights_are_not_swapped(case, monkeypatch):
    """While one forward runs on swapped float32 weights (they are swapped into the model itself), a forward on
    another thread widens op by op; so does a model whose float32 copies would exceed `SWAP_LIMIT_BYTES`. Either
    keeps float32 activations: the same float32 arithmetic on the same values (an op mixing float32 activations with a
    bf16 parameter promotes it exactly), so the output is bit for bit the swapped forward's, rounded to bf16 once."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    model = tiny("mambavision", "AutoModelForImageClassification").bfloat16()
    pixel_values = pixel_inputs(model)["pixel_values"].bfloat16()
    modes, enter = [], precision._Float32Compute.__enter__
    monkeypatch.setattr(precision._Float32Compute, "__enter__", lambda mode: modes.append(mode) or enter(mode))
    with torch.no_grad():
        swapped = model(pixel_values=pixel_values).logits
        assert not modes
        if case == "weights over the swap limit":
            monkeypatch.setattr(
                precision, "SWAP_LIMIT_BYTES", precision._float32_bytes(precision._bf16_slots(model)) - 1
            )
            by_op = model(pixel_values=pixel_values).logits
        else:
            with precision._SWAP:  # as while another thread's forward runs
                by_op = model(pixel_values=pixel_values).logits
    assert [mode.float32_activations for mode in modes] == [True]
    assert by_op.dtype == torch.bfloat16
    torch.testing.assert_close(by_op, swapped, atol=0, rtol=0)


@pytest.mark.parametrize("case", ["swapped", "over the swap limit"])
def test_a_vlms_tower_computes_in_float32_inside_the_vlms_per_op_rounding(case, monkeypatch):
    """VLM-Mamba rounds its activations to bf16 per op (its decode step reproduces that rounding), but its vision
    tower, which keeps no cache, computes inside it as it does alone: float32 throughout (swapped weights, or widened
    op by op over the swap limit), its output rounded once. The reference: the float32 tower on the rounded weights,
    independent of the policy. The per-op rounding resumes after it (the projector's output is bf16)."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    torch.manual_seed(0)
    family = FAMILIES["vlm_mamba"]
    vlm = family.auto_models["AutoModelForImageTextToText"](family.tiny_config("mambavision-tower")).eval()
    vlm = vlm.bfloat16()
    reference = type(vlm.model.vision_tower)(vlm.config.vision_config)
    reference.load_state_dict({k: v.float() for k, v in vlm.model.vision_tower.state_dict().items()})
    # Frozen as the float32 copies are: on some CPUs (AVX-512) torch's float32 linear runs another kernel, with another
    # summation order, for a weight that requires grad, even under no_grad.
    reference.requires_grad_(False)
    size = vlm.config.vision_config.image_size
    pixel_values = torch.randn(2, 3, size, size).bfloat16()
    if case == "over the swap limit":
        monkeypatch.setattr(precision, "SWAP_LIMIT_BYTES", 0)
    with torch.no_grad():
        features = vlm.model.get_image_features(pixel_values)
        expected = reference.eval()(pixel_values.float()).last_hidden_state
    assert features.last_hidden_state.dtype == features.pooler_output.dtype == torch.bfloat16
    torch.testing.assert_close(features.last_hidden_state, expected.bfloat16(), atol=0, rtol=0)
    assert all(p.dtype == torch.bfloat16 for p in vlm.parameters())


class PolicedLinear(torch.nn.Module):
    """One linear layer under the policy, as a model's forward is."""

    is_activation_checkpointing = False  # what the policy asks a PreTrainedModel before a training step

    def __init__(self, in_features, out_features):
        super().__init__()
        self.layer = torch.nn.Linear(in_features, out_features)

    keeps_bf16_activations = True  # the per-op path, where a few rows stream through the kernel

    @precision.float32_unless_native_bf16
    def forward(self, x):
        return self.layer(x)


@pytest.mark.parametrize("rows", [1, 3, 17])
def test_a_few_rows_of_a_bf16_linear_stream_through_the_kernel(rows, monkeypatch):
    """Without native bf16, F.linear of bf16 tensors over at most MAX_HEAD_ROWS rows (no autograd) runs on the
    kernel's GEMV rather than on a float32 copy of the weights: the float64 product rounded to bf16, give or take the
    last bit (another summation order), in bf16; more rows, or autograd, keep the widened torch product."""
    from mamba_multimodal.modeling import mamba_decode

    if mamba_decode.ssm_cpu.load() is None:
        pytest.skip("no C++ compiler: the kernel is not built")
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    streamed, linear_by_rows = [], mamba_decode.linear_by_rows

    def counted(*args):
        output = linear_by_rows(*args)
        streamed.append(output is not None)
        return output

    monkeypatch.setattr(mamba_decode, "linear_by_rows", counted)
    torch.manual_seed(0)
    model = PolicedLinear(96, 40).bfloat16()
    layer, inputs = model.layer, torch.randn(rows, 96).bfloat16()
    with torch.no_grad():
        output = model(inputs)
    expected = F.linear(inputs.double(), layer.weight.double(), layer.bias.double())
    assert output.dtype == torch.bfloat16
    assert streamed == [rows <= mamba_decode.MAX_HEAD_ROWS]
    torch.testing.assert_close(output.double(), expected.bfloat16().double(), atol=0, rtol=2**-7)
    with torch.enable_grad():
        model(inputs.requires_grad_()).sum().backward()  # autograd: torch's widened product, gradients flow
    assert inputs.grad is not None and streamed[-1] is False


def test_gradient_checkpointing_over_bf16_weights_trains_in_bf16(monkeypatch):
    """Its recomputation runs in the backward, outside the forward's float32 compute: the step stays in bf16."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    model = tiny("mamba", "AutoModelForCausalLM").bfloat16().train()
    enable = getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)
    enable()
    input_ids = torch.randint(3, model.config.vocab_size, (2, 6))
    loss = model(input_ids=input_ids, labels=input_ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in model.parameters())


# The per-op tolerance the README states: max |bf16 - float32| over max |float32|, bf16 inputs and output, float32
# accumulation (measured at most 6e-3: one rounding of the inputs and one of the output, 2^-8 = 3.9e-3 each).
PER_OP_TOLERANCE = 1e-2


def per_op_case(op: str):
    """(function, float32 arguments, the indices of those stored in bf16): the scan's A and D stay float32, as the
    mixers pass them."""
    if op == "linear":
        return F.linear, (torch.randn(64, 512), torch.randn(1024, 512) / 512**0.5), (0, 1)
    if op == "conv2d":
        return partial(F.conv2d, padding=1), (torch.randn(4, 64, 28, 28), torch.randn(64, 64, 3, 3) / 24), (0, 1)
    if op == "causal conv1d":
        return partial(F.conv1d, groups=256, padding=3), (torch.randn(4, 256, 128), torch.randn(256, 1, 4) / 2), (0, 1)
    b, d, n, l = 2, 64, 16, 256
    u, delta, z, B, C = torch.randn(b, d, l), torch.randn(b, d, l) * 0.5, torch.randn(b, d, l), *torch.randn(2, b, n, l)
    A, D = -torch.rand(d, n) * 2 - 0.1, torch.randn(d)
    return partial(ssm.selective_scan, delta_softplus=True), (u, delta, A, B, C, D, z), (0, 1, 3, 4, 6)


@pytest.mark.parametrize("op", ["linear", "conv2d", "causal conv1d", "selective scan"])
def test_each_op_in_bf16_is_within_the_stated_tolerance_of_float32(op):
    function, arguments, stored_in_bf16 = per_op_case(op)
    expected = function(*arguments)
    actual = function(*(a.bfloat16() if i in stored_in_bf16 else a for i, a in enumerate(arguments)))
    assert actual.dtype == torch.bfloat16
    error = (actual.double() - expected.double()).abs().max() / expected.abs().max()
    assert error <= PER_OP_TOLERANCE, f"{op}: {error:.1e}"
