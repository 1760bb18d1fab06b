"""Every family through the "cuda" dispatch on CPU tensors, mamba-ssm's and causal-conv1d's reference functions
standing in for their compiled kernels (`cuda_standin.py`), against the CPU path of the same model: forward, backward
and a decode step, in float32 and bfloat16, and every argument as the kernels check it.

Needs mamba-ssm and causal-conv1d installed with their CUDA builds skipped, plus triton and einops, which the main
venv does not hold: `make test-cuda-standin` builds `.venv-cuda-standin` and runs this file; elsewhere it is skipped.
"""

import copy
import inspect
import os
import sys

import pytest
import torch

import cuda_standin
from mamba_multimodal.modeling import precision, ssm
from mamba_multimodal.registry import FAMILIES
from test_families import BATCH, CASES, build, inputs_for, outputs_and_gradients, perturb_, tensors_of

MISSING = cuda_standin.missing_packages()
if MISSING and os.environ.get("CUDA_STANDIN_REQUIRED"):  # make test-cuda-standin: a skip would hide a broken install
    raise ImportError(f"CUDA_STANDIN_REQUIRED is set but {', '.join(MISSING)} do not import")
pytestmark = [
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (builds skipped): make test-cuda-standin"),
    pytest.mark.skipif(
        not MISSING and cuda_standin.compiled_kernels_installed(),
        reason="the compiled kernels are installed: bench/gpu_check.py checks them on the GPU",
    ),
]

# float32: mamba_ssm's reference scan and the CPU kernel sum in other orders (~1e-6 a scan, through a few layers).
FLOAT32_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
# bfloat16: both paths accumulate in float32 and round the same tensors to bfloat16 (eps 7.8e-3) at the same places;
# a rounding that falls the other way moves a value by one bfloat16 step and what follows it by a few. Gradients
# in bfloat16 are 1-3 % (relative norm) off the float32 ones on either path: the "cuda" path's may be at most
# twice the CPU path's error (+1 %), both measured against the same weights in float32.
BFLOAT16_TOLERANCE = {"atol": 5e-2, "rtol": 5e-2}
TOLERANCE = {torch.float32: FLOAT32_TOLERANCE, torch.bfloat16: BFLOAT16_TOLERANCE}
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.bfloat16, id="bfloat16")]
GENERATE_CASES = [case for case in CASES if case.values[1].can_generate()]
NEW_TOKENS = 4


def record_paths(monkeypatch) -> list[str]:
    """Every path `resolve_backend` picks from now on, in order."""
    paths, resolve_backend = [], ssm.resolve_backend

    def recording(tensor, forced="auto", kernel="selective_scan"):
        paths.append(resolve_backend(tensor, forced, kernel))
        return paths[-1]

    for module in [m for name, m in sys.modules.items() if name.startswith("mamba_multimodal")]:
        if getattr(module, "resolve_backend", None) is resolve_backend:
            monkeypatch.setattr(module, "resolve_backend", recording)
    return paths


def in_dtype(inputs: dict, dtype: torch.dtype) -> dict:
    return {name: value.to(dtype) if value.is_floating_point() else value for name, value in inputs.items()}


def with_padding(model_class, inputs: dict) -> dict:
    """The inputs with an attention mask where the model takes one: the second row's last two tokens padded (the
    mixer's masked path hands the scan a float32 Δ it computes itself)."""
    if "input_ids" not in inputs or "attention_mask" not in inspect.signature(model_class.forward).parameters:
        return inputs
    mask = torch.ones_like(inputs["input_ids"])
    mask[1, -2:] = 0
    return {**inputs, "attention_mask": mask}


def assert_close_all(actual, expected, tolerance, what: str) -> None:
    assert len(actual) == len(expected), what
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        torch.testing.assert_close(a, e, **tolerance, msg=lambda m, index=index: f"{what} {index}: {m}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_the_cuda_path_gives_the_cpu_paths_outputs_and_gradients(family, model_class, dtype, monkeypatch):
    """Forward and backward: the CPU path's outputs and parameter gradients; every selective scan on the "cuda" path
    (Coupled Mamba's coupled scan on "pytorch": mamba_ssm has no kernel for it), each forward scan with its backward,
    and every argument as selective_scan.cpp checks it. The CPU path computes as on a CPU with native bf16 (bf16
    compute, as on a GPU, where the bf16 policy of `modeling.precision` never applies)."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: True)
    model = build(family, model_class).to(dtype)
    perturb_(model)
    inputs = with_padding(model_class, inputs_for(model_class, model.config, with_labels=True))
    exact_gradients = outputs_and_gradients(copy.deepcopy(model).float(), inputs)[1]  # the same weights in float32
    expected_outputs, expected_gradients = outputs_and_gradients(model, in_dtype(inputs, dtype))

    recorder = cuda_standin.install(monkeypatch)
    paths = record_paths(monkeypatch)
    outputs, gradients = outputs_and_gradients(model, in_dtype(inputs, dtype))

    scans = paths.count("cuda")
    if family.name == "coupled_mamba":
        assert scans == 0 and set(paths) == {"pytorch"}, paths
    else:
        assert scans > 0 and set(paths) == {"cuda"}, paths
    assert recorder.names() == ["selective_scan_fwd"] * scans + ["selective_scan_bwd"] * scans
    for call in recorder.of("selective_scan_fwd"):
        assert call.arguments["u"].dtype == dtype  # the scan runs in the model's dtype, A/D/Δ bias in float32
    assert_close_all(outputs, expected_outputs, TOLERANCE[dtype], "output")
    assert gradients.keys() == expected_gradients.keys()
    for name, gradient in gradients.items():
        if dtype == torch.float32:
            torch.testing.assert_close(gradient, expected_gradients[name], **FLOAT32_TOLERANCE, msg=name)
        else:
            error, cpu_error = (relative_error(g[name], exact_gradients[name]) for g in (gradients, expected_gradients))
            assert error <= 2 * cpu_error + 1e-2, f"{name}: {error:.3g} from float32, the CPU path {cpu_error:.3g}"


def relative_error(actual: torch.Tensor, exact: torch.Tensor) -> float:
    return float((actual.float() - exact).norm() / exact.norm().clamp_min(1e-12))


def generated(model, inputs: dict):
    output = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0,
                            return_dict_in_generate=True, output_scores=True)  # fmt: skip
    return output.sequences, [score.float() for score in output.scores]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("family", "model_class"), GENERATE_CASES)
def test_the_cuda_path_generates_as_the_cpu_path(family, model_class, dtype, monkeypatch):
    """Greedy decoding: the prefill's scan on "cuda" (its last state from the kernel's chunk states), then every
    token one step through mamba_ssm's selective_state_update and causal_conv1d_update, in place on the cache: the
    same tokens and scores as the CPU path."""
    model = build(family, model_class).to(dtype)
    perturb_(model)
    inputs = in_dtype(inputs_for(model_class, model.config), dtype)
    with torch.no_grad():
        expected_tokens, expected_scores = generated(model, inputs)
        recorder = cuda_standin.install(monkeypatch)
        tokens, scores = generated(model, inputs)

    layers = model.config.get_text_config(decoder=True).num_hidden_layers
    steps = layers * (NEW_TOKENS - 1)  # the first token comes from the prefill
    assert len(recorder.of("selective_state_update")) == steps
    assert len(recorder.of("causal_conv1d_update")) == steps
    for call in recorder.of("selective_state_update"):  # the launcher's (b, heads, d, n) layout, one head
        state, x = call.arguments["state"], call.arguments["x"]
        assert state.shape[:2] == (BATCH, 1) and x.shape == state.shape[:3] and x.dtype == dtype
    assert torch.equal(tokens, expected_tokens)
    assert_close_all(scores, expected_scores, TOLERANCE[dtype], "score")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_coupled_mamba_continuation_steps_through_causal_conv1d_update_as_on_the_cpu_path(dtype, monkeypatch):
    """Coupled Mamba continues a cache one step at a time through steps at which every modality is padded: its conv
    step runs on causal_conv1d_update (the coupled state step has no kernel), with the CPU path's logits."""
    family = FAMILIES["coupled_mamba"]
    model_class = family.auto_models["AutoModelForSequenceClassification"]
    model = build(family, model_class).to(dtype)
    perturb_(model)
    features = in_dtype(inputs_for(model_class, model.config), dtype)
    mask = torch.ones(BATCH, features["text_features"].shape[1], dtype=torch.long)
    mask[0, -3:-1] = 0  # steps where every modality is padded, inside the continuation
    masks = {name.replace("_features", "_attention_mask"): mask for name in features}

    def continued():
        prefix = {name: value[:, :2] for name, value in {**features, **masks}.items()}
        rest = {name: value[:, 2:] for name, value in {**features, **masks}.items()}
        cache = model(**prefix, use_cache=True).cache
        return model(**rest, cache=cache).logits.float()

    with torch.no_grad():
        expected = continued()
        recorder = cuda_standin.install(monkeypatch)
        logits = continued()
    steps = (mask.shape[1] - 2) * len(features) * model.config.num_hidden_layers
    assert len(recorder.of("causal_conv1d_update")) == steps
    torch.testing.assert_close(logits, expected, **TOLERANCE[dtype])


def test_a_layout_the_kernel_refuses_fails_through_the_stand_in(monkeypatch):
    """The stand-ins check what the kernels check: a float32 Δ with bfloat16 inputs, which selective_scan.cpp refuses
    (TORCH_CHECK(delta.scalar_type() == input_type)), raises here too."""
    cuda_standin.install(monkeypatch)
    u = torch.randn(1, 4, 5, dtype=torch.bfloat16)
    B = torch.randn(1, 2, 5, dtype=torch.bfloat16)
    ops = ssm.cuda_kernels()
    with pytest.raises(RuntimeError, match="delta must have u's dtype"):
        ops.selective_scan(u, u.float(), -torch.ones(4, 2), B, B)
    assert tensors_of(ops.selective_scan(u, u, -torch.ones(4, 2), B, B))[0].dtype == torch.bfloat16
