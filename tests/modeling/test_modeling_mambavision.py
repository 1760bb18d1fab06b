"""MambaVision models: outputs, gradients, NVIDIA's numerics and checkpoint layout, loading NVIDIA-style Hub folders."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoBackbone, AutoModel, AutoModelForImageClassification

from mamba_multimodal import (
    MambaVisionBackbone,
    MambaVisionConfig,
    MambaVisionForImageClassification,
    MambaVisionModel,
)
from mamba_multimodal.modeling.modeling_mambavision import (
    MambaVisionAttention,
    MambaVisionMixer,
    window_partition,
    window_reverse,
)
from mamba_multimodal.modeling.ssm import selective_scan_ref

ALL_MODEL_CLASSES = (MambaVisionModel, MambaVisionForImageClassification, MambaVisionBackbone)
ATOL = 1e-5  # float32

# README table (reference/mambavision.md §3), millions of parameters with the 1000-class head.
PUBLISHED_PARAMETERS_M = {
    "mambavision-t": 31.8,
    "mambavision-t2": 35.1,
    "mambavision-s": 50.1,
    "mambavision-b": 97.7,
    "mambavision-l": 227.9,
    "mambavision-l2": 241.5,
    "mambavision-b-21k": 97.7,
    "mambavision-l-21k": 227.9,
    "mambavision-l2-512-21k": 241.5,
    "mambavision-l3-256-21k": 739.6,
    "mambavision-l3-512-21k": 739.6,
}


class MambaVisionTester:
    """transformers' ModelTester pattern: a tiny config (every kind of block) and inputs for it."""

    def __init__(self, batch_size=2, image_size=64, num_labels=10, **overrides):
        self.batch_size, self.image_size, self.num_labels = batch_size, image_size, num_labels
        self.overrides = overrides

    def get_config(self, **overrides):
        settings = {"num_labels": self.num_labels, **self.overrides, **overrides}
        return MambaVisionConfig.from_preset("mambavision-tiny-test", **settings)

    def prepare_config_and_inputs(self, **overrides):
        pixel_values = torch.randn(self.batch_size, 3, self.image_size, self.image_size)
        return self.get_config(**overrides), pixel_values


def build(model_class, config):
    model = model_class(config)
    return model.eval()


def randomize_(model: torch.nn.Module) -> None:
    """Every parameter and BatchNorm statistic random, so nothing loaded can pass for a fresh init."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if "num_batches_tracked" in name:
                tensor.fill_(7)
            elif "running_var" in name:
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.normal_(0.0, 0.2)


# --------------------------------------------------------------------------------------------- outputs
def test_model_outputs_pooled_features_and_stage_maps():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    outputs = build(MambaVisionModel, config)(pixel_values, output_hidden_states=True)
    assert outputs.last_hidden_state.shape == (2, 128, 2, 2)  # 8 · dim at 1/32
    assert outputs.pooler_output.shape == (2, 128)
    torch.testing.assert_close(outputs.pooler_output, outputs.last_hidden_state.mean(dim=(-2, -1)))
    shapes = [tuple(hidden.shape) for hidden in outputs.hidden_states]
    assert shapes == [(2, 16, 16, 16), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)]


def test_hidden_states_only_on_request_and_tuples_without_return_dict():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    model = build(MambaVisionForImageClassification, config)
    assert model(pixel_values).hidden_states is None
    logits, hidden_states = model(pixel_values, output_hidden_states=True, return_dict=False)
    assert logits.shape == (2, 10) and len(hidden_states) == 5
    config.output_hidden_states = True
    assert len(model(pixel_values).hidden_states) == 5


def test_classifier_logits_are_the_head_on_pooled_features():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    model = build(MambaVisionForImageClassification, config)
    randomize_(model)
    base = build(MambaVisionModel, config)
    base.load_state_dict(model.state_dict(), strict=False)
    pooled = base(pixel_values).pooler_output
    torch.testing.assert_close(model(pixel_values).logits, model.model.head(pooled))


def test_zero_labels_gives_an_identity_head():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs(num_labels=0)
    model = build(MambaVisionForImageClassification, config)
    assert isinstance(model.model.head, torch.nn.Identity)
    assert model(pixel_values).logits.shape == (2, 128)


@pytest.mark.parametrize(
    ("num_labels", "labels", "problem_type", "reference"),
    [
        (10, torch.tensor([3, 7]), "single_label_classification", F.cross_entropy),
        (10, torch.eye(10)[:2], "multi_label_classification", F.binary_cross_entropy_with_logits),
        (1, torch.tensor([0.5, -1.0]), "regression", lambda logits, labels: F.mse_loss(logits.squeeze(), labels)),
    ],
)
def test_losses_follow_problem_type_as_transformers(num_labels, labels, problem_type, reference):
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs(num_labels=num_labels)
    model = build(MambaVisionForImageClassification, config)
    outputs = model(pixel_values, labels=labels)
    assert model.config.problem_type == problem_type
    torch.testing.assert_close(outputs.loss, reference(outputs.logits, labels))


def test_backbone_returns_the_selected_pre_downsample_maps():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs(out_features=["stem", "stage2", "stage4"])
    backbone = build(MambaVisionBackbone, config)
    outputs = backbone(pixel_values)
    assert [tuple(m.shape) for m in outputs.feature_maps] == [(2, 16, 16, 16), (2, 32, 8, 8), (2, 128, 2, 2)]
    assert outputs.hidden_states is None
    assert backbone.channels == [16, 32, 128]
    assert backbone.out_feature_channels == {"stem": 16, "stage1": 16, "stage2": 32, "stage3": 64, "stage4": 128}
    assert len(backbone(pixel_values, output_hidden_states=True).hidden_states) == 5
    assert isinstance(AutoBackbone.from_config(config), MambaVisionBackbone)
    default = build(MambaVisionBackbone, MambaVisionTester().get_config())
    assert [tuple(m.shape) for m in default(pixel_values).feature_maps] == [(2, 128, 2, 2)]


@pytest.mark.parametrize(("height", "width"), [(50, 77), (33, 33), (96, 40), (17, 129), (1, 1)])
def test_any_resolution_pads_to_window_multiples(height, width):
    config, _ = MambaVisionTester().prepare_config_and_inputs()
    model = build(MambaVisionModel, config)
    outputs = model(torch.randn(1, 3, height, width), output_hidden_states=True)
    side = lambda size, stride: math.ceil(size / stride)  # noqa: E731 - each stride-2 conv rounds up
    expected = [(1, c, side(height, s), side(width, s)) for c, s in [(16, 4), (16, 4), (32, 8), (64, 16), (128, 32)]]
    assert [tuple(hidden.shape) for hidden in outputs.hidden_states] == expected
    assert torch.isfinite(outputs.pooler_output).all()


# -------------------------------------------------------------------------------------------- gradients
def test_drop_path_follows_nvidias_schedule_and_acts_only_in_training():
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs(drop_path_rate=0.5)
    model = MambaVisionForImageClassification(config)
    rates = [getattr(block.drop_path, "drop_prob", 0.0) for level in model.model.levels for block in level.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.5, 6))  # over all 6 blocks, 0 first
    model.train()
    assert not torch.equal(model(pixel_values).logits, model(pixel_values).logits)
    model.eval()
    assert torch.equal(model(pixel_values).logits, model(pixel_values).logits)


def test_lora_adapters_on_every_projection_train():
    from peft import LoraConfig, get_peft_model

    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    targets = ["in_proj", "x_proj", "dt_proj", "out_proj", "qkv", "mixer.proj", "fc1", "fc2"]
    model = get_peft_model(
        MambaVisionForImageClassification(config), LoraConfig(r=2, target_modules=targets, init_lora_weights=False)
    )
    model(pixel_values=pixel_values, labels=torch.tensor([1, 2])).loss.backward()
    adapters = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in adapters} == {
        "in_proj", "x_proj", "dt_proj", "out_proj", "qkv", "proj", "fc1", "fc2"
    }  # fmt: skip
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters.values())


# ------------------------------------------------------------------------------------------- numerics
def nvidia_mixer(mixer: MambaVisionMixer, hidden_states: torch.Tensor) -> torch.Tensor:
    """The mixer as reference/mambavision.md §2.8 spells it, with plain tensor algebra and the readable scan."""
    half, rank, n = mixer.d_half, mixer.time_step_rank, mixer.state_size
    x, z = (hidden_states @ mixer.in_proj.weight.T).transpose(1, 2).chunk(2, dim=1)
    x = F.silu(F.conv1d(x, mixer.conv1d_x.weight, padding="same", groups=half))  # non-causal, no bias
    z = F.silu(F.conv1d(z, mixer.conv1d_z.weight, padding="same", groups=half))
    dt, B, C = torch.split(x.transpose(1, 2) @ mixer.x_proj.weight.T, [rank, n, n], dim=-1)
    delta = F.softplus(dt @ mixer.dt_proj.weight.T + 2 * mixer.dt_proj.bias)  # the dt bias, twice
    y = selective_scan_ref(
        x, delta.transpose(1, 2), -torch.exp(mixer.A_log), B.transpose(1, 2), C.transpose(1, 2), mixer.D
    )
    return torch.cat([y, z], dim=1).transpose(1, 2) @ mixer.out_proj.weight.T  # concatenated, not gated


def test_mixer_is_nvidias_mixer():
    mixer = MambaVisionMixer(MambaVisionTester().get_config(), dim=64)
    with torch.no_grad():
        for parameter in mixer.parameters():
            parameter.normal_(0.0, 0.3)
    hidden_states = torch.randn(3, 16, 64)
    torch.testing.assert_close(mixer(hidden_states), nvidia_mixer(mixer, hidden_states), atol=ATOL, rtol=1e-4)


def test_mixer_sees_the_next_token_through_its_non_causal_convs():
    mixer = MambaVisionMixer(MambaVisionTester().get_config(), dim=64)
    hidden_states = torch.randn(1, 16, 64)
    changed = hidden_states.clone()
    changed[:, 9] += 1.0
    difference = (mixer(changed) - mixer(hidden_states)).abs().sum(-1)[0]
    assert difference[8] > 0 and difference[:8].sum() == 0  # token 9 reaches 8 (conv), nothing earlier


def test_windows_are_raster_ordered_and_reversible():
    hidden_states = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    windows = window_partition(hidden_states, 2)  # (2 · 2 · 3, 4, 3)
    assert windows.shape == (12, 4, 3)
    torch.testing.assert_close(windows[1, :, 0], hidden_states[0, 0, 0:2, 2:4].flatten())  # window (0, 1), raster
    torch.testing.assert_close(windows[3, :, 2], hidden_states[0, 2, 2:4, 0:2].flatten())  # window (1, 0)
    torch.testing.assert_close(window_reverse(windows, 2, 4, 6), hidden_states)


def test_stages_3_and_4_mix_mamba_then_attention_blocks():
    with torch.device("meta"):
        model = MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-t"))
    kind = lambda block: "M" if isinstance(block.mixer, MambaVisionMixer) else "A"  # noqa: E731
    kinds = [[kind(block) for block in model.model.levels[i].blocks] for i in (2, 3)]
    assert kinds == [list("MMMMAAAA"), list("MMAA")]
    assert isinstance(model.model.levels[3].blocks[3].mixer, MambaVisionAttention)


def test_fresh_init_is_nvidias():
    model = MambaVisionForImageClassification(MambaVisionTester().get_config(layer_scale=1e-5))
    mixer = model.model.levels[2].blocks[0].mixer
    torch.testing.assert_close(mixer.A_log, torch.log(torch.arange(1.0, 9.0)).repeat(32, 1))
    assert torch.equal(mixer.D, torch.ones(32)) and torch.equal(mixer.dt_proj.bias, torch.zeros(32))
    assert torch.equal(model.model.levels[3].blocks[1].gamma_2, torch.full((128,), 1e-5))
    assert model.model.levels[0].blocks[0].gamma is None and model.model.patch_embed.conv_down[1].eps == 1e-4
    assert abs(model.model.head.weight.std().item() - 0.02) < 0.005


# ------------------------------------------------------------------------------------ checkpoints, Hub
def published_keys(depths: list[int], layer_scale: bool) -> set[str]:
    """NVIDIA's Hub state-dict keys, written out from reference/mambavision.md §4 (not from our modules)."""
    batch_norm = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["patch_embed.conv_down.0.weight", "patch_embed.conv_down.3.weight"]
    keys += [f"patch_embed.conv_down.{i}.{n}" for i in (1, 4) for n in batch_norm]
    keys += [f"levels.{level}.downsample.reduction.0.weight" for level in (0, 1, 2)]
    for level in (0, 1):
        for j in range(depths[level]):
            keys += [f"levels.{level}.blocks.{j}.conv{k}.{n}" for k in (1, 2) for n in ("weight", "bias")]
            keys += [f"levels.{level}.blocks.{j}.norm{k}.{n}" for k in (1, 2) for n in batch_norm]
    for level in (2, 3):
        depth = depths[level]
        for j in range(depth):
            block = f"levels.{level}.blocks.{j}."
            parts = ("norm1", "norm2", "mlp.fc1", "mlp.fc2")
            keys += [block + f"{part}.{n}" for part in parts for n in ("weight", "bias")]
            keys += [block + "gamma_1", block + "gamma_2"] if layer_scale else []
            if j >= depth - depth // 2:  # the last ⌊depth/2⌋ blocks are attention
                keys += [block + f"mixer.{p}.{n}" for p in ("qkv", "proj") for n in ("weight", "bias")]
            else:
                names = ["in_proj.weight", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D"]
                names += ["out_proj.weight", "conv1d_x.weight", "conv1d_z.weight"]
                keys += [block + "mixer." + name for name in names]
    keys += [f"norm.{n}" for n in batch_norm] + ["head.weight", "head.bias"]
    return {"model." + key for key in keys}


@pytest.mark.parametrize(("name", "layer_scale"), [("mambavision-t", False), ("mambavision-b", True)])
def test_full_size_key_layout_is_nvidias(name, layer_scale):
    config = MambaVisionConfig.from_preset(name)
    with torch.device("meta"):
        state_dict = MambaVisionForImageClassification(config).state_dict()
    assert set(state_dict) == published_keys(config.depths, layer_scale)
    # Shapes from the reference's mixer table (T: stage 3 d 320 / d_half 160 / dt_rank 20, n = 8).
    mixer = "model.levels.2.blocks.0.mixer."
    assert state_dict[mixer + "in_proj.weight"].shape == (config.dim * 4, config.dim * 4)
    if name == "mambavision-t":
        assert state_dict[mixer + "x_proj.weight"].shape == (20 + 16, 160)
        assert state_dict[mixer + "dt_proj.weight"].shape == (160, 20)
        assert state_dict[mixer + "A_log"].shape == (160, 8)
        assert state_dict[mixer + "conv1d_x.weight"].shape == (160, 1, 3)
        assert state_dict["model.levels.3.blocks.2.mixer.qkv.weight"].shape == (1920, 640)
        assert state_dict["model.head.weight"].shape == (1000, 640)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS_M))
def test_parameter_counts_match_the_published_ones(name):
    with torch.device("meta"):
        model = MambaVisionForImageClassification(MambaVisionConfig.from_preset(name))
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - PUBLISHED_PARAMETERS_M[name]) < 0.1, f"{name}: {count:.2f}M"


def write_nvidia_style_folder(folder, config: MambaVisionConfig, model: torch.nn.Module, prefix: str = "model."):
    """A folder laid out like nvidia/MambaVision-T-1K: their config.json (auto_map to their remote code, timm-era
    fields), model.safetensors with `model.`-prefixed keys, and remote-code files that must never run."""
    nvidia_config = {
        "architectures": ["MambaVisionModelForImageClassification"],
        "auto_map": {
            "AutoConfig": "configuration_mambavision.MambaVisionConfig",
            "AutoModel": "modeling_mambavision.MambaVisionModel",
            "AutoModelForImageClassification": "modeling_mambavision.MambaVisionModelForImageClassification",
        },
        "crop_mode": "center",
        "crop_pct": 0.875,
        "depths": config.depths,
        "dim": config.dim,
        "drop_path_rate": 0.2,
        "id2label": {str(i): f"class {i}" for i in range(config.num_labels)},
        "in_dim": config.in_dim,
        "mean": [0.485, 0.456, 0.406],
        "mlp_ratio": 4,
        "model_type": "mambavision",
        "num_heads": config.num_heads,
        "std": [0.229, 0.224, 0.225],
        "torch_dtype": "float32",
        "transformers_version": "4.36.2",
        "window_size": config.window_size,
    }
    (folder / "config.json").write_text(json.dumps(nvidia_config, indent=2))
    weights = {
        prefix + key.removeprefix("model."): tensor.contiguous()
        for key, tensor in model.state_dict().items()
        if "num_batches_tracked" not in key  # bookkeeping NVIDIA's file may not carry
    }
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for name in ("configuration_mambavision.py", "modeling_mambavision.py"):
        (folder / name).write_text("import mamba_ssm\nraise RuntimeError('NVIDIA remote code must not run')\n")


def test_nvidia_style_folder_loads_as_ours_without_remote_code(tmp_path):
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    reference = build(MambaVisionForImageClassification, config)
    randomize_(reference)
    write_nvidia_style_folder(tmp_path, config, reference)

    model, info = AutoModelForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert type(model) is MambaVisionForImageClassification and not model.training
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.id2label[3] == "class 3" and model.config.crop_pct == 0.875
    assert torch.equal(model(pixel_values).logits, reference(pixel_values).logits)

    base = AutoModel.from_pretrained(tmp_path)  # NVIDIA's AutoModel checkpoints also hold the head: ignored
    assert type(base) is MambaVisionModel
    expected = reference.model.head(base(pixel_values).pooler_output)
    torch.testing.assert_close(expected, reference(pixel_values).logits, atol=ATOL, rtol=ATOL)


def test_nvidia_checkpoint_fine_tunes_with_a_new_number_of_labels(tmp_path):
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    reference = build(MambaVisionForImageClassification, config)
    randomize_(reference)
    write_nvidia_style_folder(tmp_path, config, reference)
    model = AutoModelForImageClassification.from_pretrained(tmp_path, num_labels=3, ignore_mismatched_sizes=True)
    assert model.config.num_labels == 3 and model.model.head.weight.shape == (3, 128)
    assert torch.equal(model.model.levels[3].blocks[0].mixer.A_log, reference.model.levels[3].blocks[0].mixer.A_log)
    assert model(pixel_values, labels=torch.tensor([0, 2])).loss.isfinite()


def test_raw_timm_keys_without_the_model_prefix_load_too(tmp_path):
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    reference = build(MambaVisionForImageClassification, config)
    randomize_(reference)
    write_nvidia_style_folder(tmp_path, config, reference, prefix="")
    model = MambaVisionForImageClassification.from_pretrained(tmp_path)
    assert torch.equal(model(pixel_values).logits, reference(pixel_values).logits)


def test_backbone_loads_from_a_classification_checkpoint(tmp_path):
    config, pixel_values = MambaVisionTester().prepare_config_and_inputs()
    reference = build(MambaVisionForImageClassification, config)
    randomize_(reference)
    write_nvidia_style_folder(tmp_path, config, reference)
    backbone = MambaVisionBackbone.from_pretrained(tmp_path, out_indices=[1, 2, 3, 4])
    maps = reference(pixel_values, output_hidden_states=True).hidden_states[1:]
    for got, want in zip(backbone(pixel_values).feature_maps, maps, strict=True):
        assert torch.equal(got, want)


# ----------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("pixel_values", "error", "message"),
    [
        (None, ValueError, "You have to specify pixel_values"),
        (torch.randn(3, 64, 64), ValueError, r"must be 4-D \(batch, channels, height, width\), got shape \(3, 64"),
        (torch.randn(2, 1, 64, 64), ValueError, "must have config.num_channels = 3 channels in dimension 1"),
        (torch.randn(2, 64, 64, 3), ValueError, r"channels-last input\? use pixel_values.permute\(0, 3, 1, 2\)"),
        (torch.randn(0, 3, 64, 64), ValueError, r"pixel_values is empty .* got shape \(0, 3, 64, 64\)"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "must be a floating-point tensor"),
        ([[0.0]], TypeError, "pixel_values must be a torch.Tensor"),
    ],
)
@pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES)
def test_bad_pixel_values_raise_clear_errors(model_class, pixel_values, error, message):
    model = build(model_class, MambaVisionTester().get_config())
    with pytest.raises(error, match=message):
        model(pixel_values)
