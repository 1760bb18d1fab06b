"""Every model class of every family in `registry.FAMILIES`, one generic test each (timm's "one test over everything").

The only copy of the checks every family shares: Auto registration and loading (AutoModel on a task model's folder
too), the config's round trip, save/load (every tensor kept), batch independence, tuples without return_dict, unknown
keywords refused, a gradient for every parameter, gradient checkpointing (same outputs and gradients, every layer
checkpointed), every scan backend against the float64 reference, and LoRA from the family's preset: every adapter
trains, merged == unmerged, and the adapter reloaded onto the saved base reproduces the trained model (BatchNorm
statistics included); bf16 (`modeling.precision`): autocast on a CPU without native bf16 computes exactly as float32
with no bf16 matmul, on one with it within bf16 tolerance, and bf16 weights compute their matmuls in float32. A
new family is one registry entry: these tests pick it up with no new code; per-family test files keep only what is
specific to their family.
"""

import inspect
import sys

import pytest
import torch
import transformers
from peft import PeftModel
from transformers import AutoConfig, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

from mamba_multimodal.modeling import precision, ssm
from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.training import get_lora_model, lora_config_for
from mamba_multimodal.training.tasks import TASKS
from transformers_helpers import tensors_of

BATCH, LENGTH = 2, 6
MERGE_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}  # float32: merging reorders the sums (feature maps reach ~10)
# The same weights and operations, yet not always the same bits: from_pretrained leaves parameters at addresses that
# are not 64-byte aligned (safetensors offsets), and the CPU GEMM kernels then round differently (~1e-9).
RELOAD_TOLERANCE = {"atol": 1e-6, "rtol": 0}
BATCH_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}  # float32: a batch of one takes other GEMM paths
CHECKPOINT_TOLERANCE = {"atol": 1e-6, "rtol": 1e-6}  # float32: the recompute runs the same operations
# bf16 against float32, as max |bf16 - float32| over max |float32| of each output and parameter gradient (bf16 errors
# scale with the tensor; a wrong cast or scan is off by O(1)): bf16 compute (autocast on a CPU with native bf16), or
# bf16 storage with float32 compute against the float32 model with the same rounded weights. Measured up to 2.6e-2 on
# outputs, 8.2e-2 on gradients (8 significant bits through every layer of the backward, with cancellation in the
# first layers' weight gradients).
BF16_TOLERANCE = {"outputs": 5e-2, "gradients": 1.5e-1}
BACKEND_TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}  # float32 against float64
CASES = [
    pytest.param(family, model_class, id=f"{family.name}-{model_class.__name__}")
    for family in FAMILIES.values()
    for model_class in dict.fromkeys(family.auto_models.values())
]
# Each class with the family's tiny config and with each of its variants (the registry's test configs).
VARIANT_CASES = [
    pytest.param(family, model_class, variant, id=f"{family.name}-{model_class.__name__}-{variant or 'tiny'}")
    for family in FAMILIES.values()
    for variant in [None, *family.variants]
    for model_class in dict.fromkeys(family.auto_models.values())
]
# Every variant with USE_HUB_KERNELS unset; each class's tiny config also with it on and off.
ROUND_TRIP_CASES = [
    pytest.param(*case.values, None, id=f"{case.id}-USE_HUB_KERNELS-unset") for case in VARIANT_CASES
] + [
    pytest.param(*case.values, None, setting, id=f"{case.id}-USE_HUB_KERNELS-{setting}")
    for case in CASES
    for setting in ("1", "0")
]
BASE_FROM_TASK_CASES = [  # not AutoBackbone's class: it holds the stages only, not the base model's final norm
    pytest.param(family, model_class, variant, id=f"{family.name}-{model_class.__name__}-{variant or 'tiny'}")
    for family in FAMILIES.values()
    if family.register_with_auto
    for variant in [None, *family.variants]
    for model_class in dict.fromkeys(family.auto_models.values())
    if model_class not in (family.auto_models["AutoModel"], family.auto_models.get("AutoBackbone"))
]
CONFIG_CASES = [
    pytest.param(family, variant, id=f"{family.name}-{variant or 'tiny'}")
    for family in FAMILIES.values()
    for variant in [None, *family.variants]
]
AUTO_CASES = [
    pytest.param(family, auto_name, model_class, id=f"{family.name}-{auto_name}")
    for family in FAMILIES.values()
    if family.register_with_auto
    for auto_name, model_class in family.auto_models.items()
]


def build(family, model_class, variant=None):
    torch.manual_seed(0)
    return model_class(family.tiny_config(variant)).eval()


def perturb_(model) -> None:
    """Every floating-point parameter and buffer moved off its initial value (BatchNorm statistics, A_log, D, zero
    biases included), so that nothing reloaded can pass for a fresh init and the state matters for the outputs."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))


def inputs_for(model_class, config, with_labels=False) -> dict:
    """Random inputs of batch BATCH as `model_class.forward` takes them, read from the config: pixel_values for an
    image model, input_ids (the image tokens first where the model places image features at them, as LLaVA's
    `get_image_features` models do), `{modality}_features` for Coupled Mamba, and labels (the input_ids for a
    generative model, else a class index, or a float for one label)."""
    accepted = inspect.signature(model_class.forward).parameters
    inputs = {}
    if "pixel_values" in accepted:
        size = getattr(config, "vision_config", config).image_size
        inputs["pixel_values"] = torch.randn(BATCH, 3, size, size)
    if "input_ids" in accepted:
        text = torch.randint(3, config.get_text_config(decoder=True).vocab_size, (BATCH, LENGTH))
        image_token = getattr(config, "image_token_id", None)
        if image_token is not None:
            text = text.masked_fill(text == image_token, 3)
        if image_token is not None and hasattr(model_class, "get_image_features"):
            image = torch.full((BATCH, config.image_seq_length), image_token)
            text = torch.cat([image, text], dim=1)
        inputs["input_ids"] = text
    for modality, size in zip(getattr(config, "modalities", ()), getattr(config, "input_sizes", ()), strict=True):
        inputs[f"{modality}_features"] = torch.randn(BATCH, LENGTH, size)
    if with_labels and "labels" in accepted:
        if model_class.can_generate():
            inputs["labels"] = inputs["input_ids"].clone()
        elif config.num_labels == 1:
            inputs["labels"] = torch.randn(BATCH)
        else:
            inputs["labels"] = torch.randint(0, config.num_labels, (BATCH,))
    return inputs


def outputs_of(model, inputs) -> list[torch.Tensor]:
    with torch.no_grad():
        return tensors_of(model(**inputs))


def scalar_of(model, inputs) -> torch.Tensor:
    return scalar_of_output(model(**inputs))


def scalar_of_output(output) -> torch.Tensor:
    """The loss where the model computes one, else a fixed random projection of every output (a plain sum would give
    LayerNorm'd outputs no gradient), the same in every dtype."""
    if getattr(output, "loss", None) is not None:
        return output.loss
    generator = torch.Generator().manual_seed(1)
    tensors = [t for t in tensors_of(output) if t.is_floating_point()]
    return sum((t * torch.randn(t.shape, generator=generator).to(t.dtype)).sum() for t in tensors)


def assert_close_to_scale(actual, expected, tolerance: float, name: str = "") -> None:
    """max |actual - expected| <= tolerance * max |expected| (bf16 errors scale with the tensor, not per element)."""
    scale = expected.abs().max().item()
    error = (actual.double() - expected.double()).abs().max().item()
    assert error <= tolerance * scale, f"{name}: max-abs error {error:.2e} > {tolerance:.0e} x scale {scale:.2e}"


def assert_all_close(actual, expected, tolerance):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, **tolerance)


# ----------------------------------------------------------------------------------------- registration
@pytest.mark.parametrize(("family", "auto_name", "model_class"), AUTO_CASES)
def test_auto_classes_build_and_load_the_registered_model(family, auto_name, model_class, tmp_path):
    assert type(AutoConfig.for_model(family.model_type)) is family.config_class
    auto_class = getattr(transformers, auto_name)
    model = auto_class.from_config(family.tiny_config()).eval()
    assert type(model) is model_class
    if auto_name == "AutoBackbone":
        return  # transformers' AutoBackbone.from_pretrained asks the Hub about any local folder (README, known limit)
    model.save_pretrained(tmp_path)
    loaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(loaded) is model_class
    inputs = inputs_for(model_class, model.config)
    assert_all_close(outputs_of(loaded, inputs), outputs_of(model, inputs), RELOAD_TOLERANCE)


@pytest.mark.parametrize(("family", "model_class", "variant"), BASE_FROM_TASK_CASES)
def test_auto_model_loads_the_base_model_of_a_task_models_folder(family, model_class, variant, tmp_path):
    """AutoModel on a classifier's or generator's folder: the family's base model, holding the task model's weights
    (under the task model's `base_model_prefix`, or at the same names)."""
    model = build(family, model_class, variant)
    perturb_(model)
    model.save_pretrained(tmp_path)
    base = transformers.AutoModel.from_pretrained(tmp_path)
    assert type(base) is family.auto_models["AutoModel"]
    saved = model.state_dict()
    for name, tensor in base.state_dict().items():
        expected = saved.get(f"{model.base_model_prefix}.{name}", saved.get(name))
        assert expected is not None and torch.equal(tensor, expected), name


@pytest.mark.parametrize(("family", "variant"), CONFIG_CASES)
def test_the_config_round_trips_through_auto_config(family, variant, tmp_path):
    config = family.tiny_config(variant)
    config.save_pretrained(tmp_path)
    # AutoConfig resolves a model type that transformers owns ("mamba") to transformers' class: ours loads by name.
    loaded = (AutoConfig if family.register_with_auto else family.config_class).from_pretrained(tmp_path)
    assert type(loaded) is family.config_class
    fields = lambda c: {k: v for k, v in c.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert fields(loaded) == fields(config)


# ------------------------------------------------------------------------------------ save, load, outputs
@pytest.mark.parametrize(("family", "model_class", "variant", "use_hub_kernels"), ROUND_TRIP_CASES)
def test_save_and_load_round_trip_keeps_every_tensor_and_the_outputs(
    family, model_class, variant, use_hub_kernels, tmp_path, monkeypatch
):
    """From 5.25 on, from_pretrained kernelizes the model with Hub kernels unless USE_HUB_KERNELS says no: none of our
    layers has a Hub kernel, so with the environment variable unset, on or off, and the Hub offline (conftest),
    loading fetches nothing and changes nothing."""
    if use_hub_kernels is None:
        monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    else:
        monkeypatch.setenv("USE_HUB_KERNELS", use_hub_kernels)
    model = build(family, model_class, variant)
    perturb_(model)
    inputs = inputs_for(model_class, model.config)
    model.save_pretrained(tmp_path)
    loaded = model_class.from_pretrained(tmp_path).eval()
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert_all_close(outputs_of(loaded, inputs), outputs_of(model, inputs), RELOAD_TOLERANCE)


@pytest.mark.parametrize(("family", "model_class", "variant"), VARIANT_CASES)
def test_each_example_of_a_batch_gives_what_it_gives_alone(family, model_class, variant):
    model = build(family, model_class, variant)
    inputs = inputs_for(model_class, model.config)
    batched = outputs_of(model, inputs)
    for row in range(BATCH):
        alone = outputs_of(model, {name: value[row : row + 1] for name, value in inputs.items()})
        assert_all_close(alone, [tensor[row : row + 1] for tensor in batched], BATCH_TOLERANCE)


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_return_dict_false_gives_the_outputs_as_a_tuple(family, model_class):
    model = build(family, model_class)
    inputs = inputs_for(model_class, model.config, with_labels=True)
    with torch.no_grad():
        as_tuple = model(**inputs, return_dict=False, output_hidden_states=True)
        as_output = model(**inputs, output_hidden_states=True)
    assert type(as_tuple) is tuple
    assert_all_close(tensors_of(as_tuple), tensors_of(as_output.to_tuple()), {"atol": 0, "rtol": 0})


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_an_unknown_keyword_raises_a_type_error_naming_it(family, model_class):
    model = build(family, model_class)
    with pytest.raises(TypeError, match="output_hiden_states"):
        model(**inputs_for(model_class, model.config), output_hiden_states=True)


# ---------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize(("family", "model_class", "variant"), VARIANT_CASES)
def test_every_parameter_gets_a_finite_nonzero_gradient(family, model_class, variant):
    model = build(family, model_class, variant).train()
    scalar_of(model, inputs_for(model_class, model.config, with_labels=True)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, f"{name}: {parameter.grad}"


def outputs_and_gradients(model, inputs) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """The outputs of one forward (in the model's mode) and the gradient of `scalar_of` for every parameter."""
    model.zero_grad()
    torch.manual_seed(3)  # the same dropout masks in both runs (checkpointing restores the RNG for its recompute)
    output = model(**inputs)
    scalar_of_output(output).backward()
    return [t.detach() for t in tensors_of(output)], {name: p.grad.clone() for name, p in model.named_parameters()}


def checkpointable_layers(model) -> list[torch.nn.Module]:
    """The model's repeated blocks: every GradientCheckpointingLayer and every module of a class the model (or a
    pretrained model inside it, such as a vision tower) names in `_no_split_modules`."""
    block_names = {
        name for module in model.modules() if isinstance(module, PreTrainedModel)
        for name in module._no_split_modules or ()
    }  # fmt: skip
    return [
        module for module in model.modules()
        if isinstance(module, GradientCheckpointingLayer) or type(module).__name__ in block_names
    ]  # fmt: skip


def module_called_by(function) -> torch.nn.Module | None:
    """The layer a GradientCheckpointingLayer hands to checkpoint: `partial(super().__call__, ...)` (5.17) or
    `partial(forward, self, ...)` (5.25)."""
    bound = getattr(getattr(function, "func", None), "__self__", None)
    if isinstance(bound, torch.nn.Module):
        return bound
    return next((a for a in getattr(function, "args", ()) if isinstance(a, torch.nn.Module)), None)


@pytest.mark.parametrize(("family", "model_class", "variant"), VARIANT_CASES)
def test_gradient_checkpointing_checkpoints_every_layer_and_changes_no_output_or_gradient(
    family, model_class, variant, monkeypatch
):
    model = build(family, model_class, variant).train()
    assert model.supports_gradient_checkpointing, f"{model_class.__name__} cannot be gradient-checkpointed"
    inputs = inputs_for(model_class, model.config, with_labels=True)
    plain_outputs, plain_gradients = outputs_and_gradients(model, inputs)

    checkpointed = []  # the module of every call of torch.utils.checkpoint.checkpoint

    def counting_checkpoint(function, *args, **kwargs):
        checkpointed.append(module_called_by(function))
        return torch.utils.checkpoint.checkpoint(function, *args, **kwargs)

    monkeypatch.setattr(transformers.modeling_utils, "checkpoint", counting_checkpoint)
    # transformers 5.2x renamed it activation_checkpointing_enable (the old name warns)
    enable = getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)
    enable()
    outputs, gradients = outputs_and_gradients(model, inputs)

    layers = checkpointable_layers(model)
    assert layers, f"{model_class.__name__} has no layer to checkpoint"
    not_checkpointable = [type(layer).__name__ for layer in layers if not isinstance(layer, GradientCheckpointingLayer)]
    assert not not_checkpointable, f"not GradientCheckpointingLayers: {sorted(set(not_checkpointable))}"
    assert sorted(map(id, checkpointed)) == sorted(map(id, layers)), "every layer checkpointed once, nothing else"
    assert_all_close(outputs, plain_outputs, CHECKPOINT_TOLERANCE)
    assert gradients.keys() == plain_gradients.keys()
    for name, gradient in gradients.items():
        expected = plain_gradients[name]
        torch.testing.assert_close(gradient, expected, **CHECKPOINT_TOLERANCE, msg=lambda m, name=name: f"{name}: {m}")


# --------------------------------------------------------------------------------------------- scan backends
def force_scan_backend_(model, backend: str) -> None:
    """`scan_backend = backend` on the model's config and its sub-configs, as a user (or `export.export_onnx`) sets it
    on a built model: every scan must follow it, so no block may scan from a copy of its settings. transformers'
    MambaConfig declares no scan_backend, which the mixer reads with "auto" as its default."""
    configs = [model.config, *(getattr(model.config, name) for name in getattr(model.config, "sub_configs", {}))]
    for config in configs:
        if config is not None:
            config.scan_backend = backend


def cpu_backends() -> list:
    cpu = pytest.param("cpu", marks=pytest.mark.skipif(ssm.ssm_cpu.load() is None, reason="no C++ kernel here"))
    return ["reference", "pytorch", cpu]


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize(("family", "model_class", "variant"), VARIANT_CASES)
def test_every_scan_backend_gives_the_float64_references_outputs_and_gradients(
    family, model_class, variant, backend, monkeypatch
):
    """float32 on each backend against float64 on "reference" (the readable sequential scan); every scan of the
    model must run on the backend asked for."""
    model = build(family, model_class, variant)
    perturb_(model)  # larger Δ, A and biases than the init's, so that the state matters
    inputs = inputs_for(model_class, model.config, with_labels=True)
    paths = []

    def recording_resolve_backend(tensor, forced="auto", kernel="selective_scan"):
        paths.append(resolve_backend(tensor, forced, kernel))
        return paths[-1]

    resolve_backend = ssm.resolve_backend
    for module in [m for name, m in sys.modules.items() if name.startswith("mamba_multimodal")]:
        if getattr(module, "resolve_backend", None) is resolve_backend:
            monkeypatch.setattr(module, "resolve_backend", recording_resolve_backend)

    force_scan_backend_(model, "reference")
    expected_outputs, expected_gradients = outputs_and_gradients(model.to(torch.float64), as_float64(inputs))
    paths.clear()
    force_scan_backend_(model, backend)
    outputs, gradients = outputs_and_gradients(model.to(torch.float32), inputs)
    assert paths and set(paths) == {backend}, paths
    assert_all_close(outputs, [expected.float() for expected in expected_outputs], BACKEND_TOLERANCE)
    for name, gradient in gradients.items():
        expected = expected_gradients[name].float()
        torch.testing.assert_close(gradient, expected, **BACKEND_TOLERANCE, msg=lambda m, name=name: f"{name}: {m}")


def as_float64(inputs: dict) -> dict:
    return {name: value.double() if value.is_floating_point() else value for name, value in inputs.items()}


# --------------------------------------------------------------------------------------------------- LoRA
def assert_lora_trains_merges_and_reloads(model, tmp_path):
    """LoRA from the family's preset (`get_lora_model`, `lora_config_for`): every adapter gets a gradient; after a
    few AdamW steps in train mode the adapter, loaded onto the saved base, reproduces the trained model, and so does
    the merged model (and generate)."""
    model_class = type(model)
    inputs = inputs_for(model_class, model.config)
    labelled = inputs_for(model_class, model.config, with_labels=True)
    model.save_pretrained(tmp_path / "base")
    config = lora_config_for(model, init_lora_weights=False)  # B != 0: A gets a gradient from the first backward
    module_names = {name for name, _ in model.named_modules()}
    for entry in config.modules_to_save or ():
        assert any(name == entry or name.endswith(f".{entry}") for name in module_names), entry
    peft_model = get_lora_model(model, init_lora_weights=False).train()

    # 1. Every adapter gets a gradient.
    adapters = {name: p for name, p in peft_model.named_parameters() if "lora_" in name}
    assert adapters
    scalar_of(peft_model, labelled).backward()
    for name, parameter in adapters.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{name} got no gradient"

    # 2. A few steps in train mode: adapters, saved modules and BatchNorm statistics move.
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.step()
        optimizer.zero_grad()
        scalar_of(peft_model, labelled).backward()
    # Frozen as a loaded adapter is: torch's linear takes another GEMM path for a 3-d input when the weight requires
    # a gradient (even under no_grad), which changes the rounding (~1e-7).
    peft_model.eval().requires_grad_(False)
    trained = outputs_of(peft_model, inputs)
    base = model_class.from_pretrained(tmp_path / "base").eval()
    assert not all(torch.equal(a, b) for a, b in zip(outputs_of(base, inputs), trained, strict=True))

    # 3. The adapter, loaded onto the saved base, is the trained model.
    peft_model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    assert_all_close(outputs_of(reloaded, inputs), trained, RELOAD_TOLERANCE)

    # 4. Merged == unmerged; generate() runs the adapters through the plain PeftModel (no task_type).
    generate = {"max_new_tokens": 3, "do_sample": False, "pad_token_id": 0}
    unmerged_tokens = peft_model.generate(**inputs, **generate) if model_class.can_generate() else None
    merged = peft_model.merge_and_unload()
    assert_all_close(outputs_of(merged, inputs), trained, MERGE_TOLERANCE)
    if unmerged_tokens is not None:
        assert torch.equal(merged.generate(**inputs, **generate), unmerged_tokens)


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_lora_preset_trains_merges_exactly_and_reloads_onto_the_saved_base(family, model_class, tmp_path):
    assert_lora_trains_merges_and_reloads(build(family, model_class), tmp_path)


def vlm_with_a_mambavision_tower():
    family = FAMILIES["vlm_mamba"]
    config = family.tiny_config()
    config.vision_config = FAMILIES["mambavision"].tiny_config()
    torch.manual_seed(0)
    return TASKS["vqa"].load("model_class")(config).eval()


def test_lora_on_a_vlm_with_a_mambavision_tower_saves_the_frozen_towers_batchnorms(tmp_path):
    """The tower is frozen, but its BatchNorms update their statistics in training mode: they travel with the adapter
    (and only they: "norm1"/"norm2" also name the Mamba blocks' LayerNorms)."""
    model = vlm_with_a_mambavision_tower()
    batchnorms = [name for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert batchnorms and lora_config_for(model).modules_to_save == ["multi_modal_projector", *batchnorms]
    assert_lora_trains_merges_and_reloads(model, tmp_path)


def test_lora_on_a_vlm_trains_nothing_in_the_tower_and_its_batchnorm_statistics_still_move():
    """VLM-Mamba's preset (`train_statistics_norms=False`): no parameter of the tower trains, so backward stops at
    the projector; the BatchNorms' statistics move in training mode (and travel with the adapter, test above)."""
    peft_model = get_lora_model(vlm_with_a_mambavision_tower()).train()
    tower = {name: p for name, p in peft_model.named_parameters() if ".vision_tower." in name}
    statistics = {name: b.clone() for name, b in peft_model.named_buffers() if name.endswith(".running_mean")}
    assert tower and statistics and not any(p.requires_grad for p in tower.values())
    scalar_of(peft_model, inputs_for(type(peft_model.get_base_model()), peft_model.config, True)).backward()
    assert all(p.grad is None for p in tower.values())
    assert peft_model.base_model.model.model.multi_modal_projector.modules_to_save.default.linears[0].weight.grad.any()
    moved = [
        name for name, b in peft_model.named_buffers() if name in statistics and not torch.equal(b, statistics[name])
    ]
    assert moved and all("modules_to_save" in name for name in moved)


def test_lora_config_for_fits_the_model_and_takes_overrides():
    family = FAMILIES["mambavision"]
    backbone = build(family, family.auto_models["AutoBackbone"])
    config = lora_config_for(backbone, r=4, modules_to_save=["model.levels.0.blocks.0.norm1"])
    assert config.r == 4 and "head" not in config.modules_to_save  # the backbone has no head
    assert config.modules_to_save.count("model.levels.0.blocks.0.norm1") == 1  # not added twice
    with pytest.raises(TypeError, match="'rank'"):
        lora_config_for(backbone, rank=4)


# --------------------------------------------------------------------------------------------------- bf16
class SlowBf16Ops(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the matmuls and convolutions (at the ATen level, after autocast) that receive a bf16 tensor: on a CPU
    without native bf16 each runs many times slower than in float32."""

    KINDS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "_scaled_dot_product_flash_attention_for_cpu")

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if func.overloadpacket.__name__ in self.KINDS and any(t.dtype == torch.bfloat16 for t in tensors):
            self.seen.append(func.overloadpacket.__name__)
        return func(*args, **kwargs)


def bf16_run(model, inputs, native: bool, monkeypatch, autocast: bool):
    """`outputs_and_gradients` on a CPU with (`native`) or without native bf16, the forward under bf16 autocast or
    not (the backward outside it, as torch's AMP recipe and Trainer run it); and the slow bf16 ops that ran."""
    monkeypatch.setattr(precision, "has_native_bf16", lambda: native)
    model.zero_grad()
    with SlowBf16Ops() as recorder:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            output = model(**inputs)
            scalar = scalar_of_output(output)
        scalar.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters()}
    return [t.detach() for t in tensors_of(output)], gradients, recorder.seen


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_bf16_autocast_on_a_cpu_without_native_bf16_computes_exactly_as_float32(family, model_class, monkeypatch):
    model = build(family, model_class)
    inputs = inputs_for(model_class, model.config, with_labels=True)
    expected_outputs, expected_gradients = outputs_and_gradients(model, inputs)
    outputs, gradients, slow_ops = bf16_run(model, inputs, native=False, monkeypatch=monkeypatch, autocast=True)
    assert not slow_ops, f"bf16 matmuls or convolutions ran: {sorted(set(slow_ops))}"
    assert_all_close(outputs, expected_outputs, {"atol": 0, "rtol": 0})
    assert_all_close(list(gradients.values()), list(expected_gradients.values()), {"atol": 0, "rtol": 0})


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_bf16_autocast_on_a_cpu_with_native_bf16_computes_in_bf16_within_tolerance(family, model_class, monkeypatch):
    model = build(family, model_class)
    inputs = inputs_for(model_class, model.config, with_labels=True)
    expected_outputs, expected_gradients = outputs_and_gradients(model, inputs)
    outputs, gradients, slow_ops = bf16_run(model, inputs, native=True, monkeypatch=monkeypatch, autocast=True)
    assert slow_ops, "autocast ran no bf16 matmul"
    for index, (output, expected) in enumerate(zip(outputs, expected_outputs, strict=True)):
        assert_close_to_scale(output, expected, BF16_TOLERANCE["outputs"], f"output {index}")
    for name, gradient in gradients.items():
        assert gradient.dtype == torch.float32, name  # autocast keeps the parameters (and their gradients) float32
        assert_close_to_scale(gradient.float(), expected_gradients[name], BF16_TOLERANCE["gradients"], name)


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_bf16_weights_on_a_cpu_without_native_bf16_compute_in_float32(family, model_class, monkeypatch):
    """bf16 storage: no slow bf16 matmul runs, the outputs are within bf16 tolerance of the float32 model and in
    the dtypes torch alone gives them (bf16 compute, as on a CPU with native bf16), and a training step reaches every
    bf16 parameter."""
    model = build(family, model_class).bfloat16()
    inputs = inputs_for(model_class, model.config, with_labels=True)
    # as bf16 models take images (in their weights' dtype), so that both runs see the same values
    inputs = {key: value.bfloat16().float() if value.is_floating_point() else value for key, value in inputs.items()}
    # the float32 model with the same (bf16-rounded) weights
    expected_outputs, expected_gradients = outputs_and_gradients(build(family, model_class).bfloat16().float(), inputs)
    native_outputs, _, _ = bf16_run(model, inputs, native=True, monkeypatch=monkeypatch, autocast=False)
    outputs, gradients, slow_ops = bf16_run(model, inputs, native=False, monkeypatch=monkeypatch, autocast=False)
    assert not slow_ops, f"bf16 matmuls or convolutions ran: {sorted(set(slow_ops))}"
    assert [t.dtype for t in outputs] == [t.dtype for t in native_outputs]
    for index, (output, expected) in enumerate(zip(outputs, expected_outputs, strict=True)):
        assert_close_to_scale(output, expected, BF16_TOLERANCE["outputs"], f"output {index}")
    for name, gradient in gradients.items():
        assert gradient.dtype == torch.bfloat16 and torch.isfinite(gradient).all(), name
        assert_close_to_scale(gradient.float(), expected_gradients[name], BF16_TOLERANCE["gradients"], name)
