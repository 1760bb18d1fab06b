"""MambaVisionConfig: NVIDIA's field names, presets of every released variant, validation at the door."""

import json
import math
import re

import pytest
from transformers import AutoConfig, AutoModelForImageClassification

from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification
from mamba_multimodal.configuration.configuration_mambavision import PRESETS

FLOAT_FIELDS = (
    "mlp_ratio",
    "drop_path_rate",
    "layer_scale",
    "layer_scale_conv",
    "drop_rate",
    "attn_drop_rate",
    "initializer_range",
    "crop_pct",
)

# Factory defaults and default_cfgs of NVIDIA's mamba_vision.py (reference/mambavision.md §3 and §7).
PUBLISHED = {
    "mambavision-t": ([1, 3, 8, 4], 80, 32, [2, 4, 8, 16], [8, 8, 14, 7], None, 224, 1.0, "center"),
    "mambavision-t2": ([1, 3, 11, 4], 80, 32, [2, 4, 8, 16], [8, 8, 14, 7], None, 224, 0.98, "center"),
    "mambavision-s": ([3, 3, 7, 5], 96, 64, [2, 4, 8, 16], [8, 8, 14, 7], None, 224, 0.93, "center"),
    "mambavision-b": ([3, 3, 10, 5], 128, 64, [2, 4, 8, 16], [8, 8, 14, 7], 1e-5, 224, 1.0, "center"),
    "mambavision-l": ([3, 3, 10, 5], 196, 64, [4, 8, 16, 32], [8, 8, 14, 7], 1e-5, 224, 1.0, "center"),
    "mambavision-l2": ([3, 3, 12, 5], 196, 64, [4, 8, 16, 32], [8, 8, 14, 7], 1e-5, 224, 1.0, "center"),
    "mambavision-b-21k": ([3, 3, 10, 5], 128, 64, [2, 4, 8, 16], [8, 8, 14, 7], 1e-5, 224, 1.0, "center"),
    "mambavision-l-21k": ([3, 3, 10, 5], 196, 64, [4, 8, 16, 32], [8, 8, 14, 7], 1e-5, 224, 1.0, "center"),
    "mambavision-l2-512-21k": ([3, 3, 12, 5], 196, 64, [4, 8, 16, 32], [8, 8, 32, 16], 1e-5, 512, 0.93, "squash"),
    "mambavision-l3-256-21k": ([3, 3, 20, 10], 256, 64, [4, 8, 16, 32], [8, 8, 16, 8], 1e-5, 256, 1.0, "center"),
    "mambavision-l3-512-21k": ([3, 3, 20, 10], 256, 64, [4, 8, 16, 32], [8, 8, 32, 16], 1e-5, 512, 0.93, "squash"),
}

# A `config.json` as on https://huggingface.co/nvidia/MambaVision-L-1K (no id2label in that revision).
NVIDIA_L_CONFIG = {
    "architectures": ["MambaVisionModelForImageClassification"],
    "auto_map": {
        "AutoConfig": "configuration_mambavision.MambaVisionConfig",
        "AutoModel": "modeling_mambavision.MambaVisionModel",
        "AutoModelForImageClassification": "modeling_mambavision.MambaVisionModelForImageClassification",
    },
    "depths": [3, 3, 10, 5],
    "dim": 196,
    "drop_path_rate": 0.3,
    "in_dim": 64,
    "layer_scale": 1e-05,
    "layer_scale_conv": None,
    "mlp_ratio": 4,
    "model_type": "mambavision",
    "num_heads": [4, 8, 16, 32],
    "torch_dtype": "float32",
    "transformers_version": "4.36.2",
    "window_size": [8, 8, 14, 7],
}


def test_defaults_are_mambavision_t():
    config = MambaVisionConfig()
    assert (config.depths, config.dim, config.in_dim, config.num_heads) == ([1, 3, 8, 4], 80, 32, [2, 4, 8, 16])
    assert (config.window_size, config.mlp_ratio, config.drop_path_rate) == ([8, 8, 14, 7], 4, 0.2)
    assert (config.layer_scale, config.layer_scale_conv, config.qkv_bias) == (None, None, True)
    assert (config.state_size, config.conv_kernel, config.expand, config.scan_backend) == (8, 3, 1, "auto")
    assert config.hidden_sizes == [80, 160, 320, 640] and config.num_features == 640
    assert config.num_labels == 1000  # NVIDIA's num_classes


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_preset_matches_the_published_variant(name):
    config = MambaVisionConfig.from_preset(name)
    depths, dim, in_dim, heads, window, layer_scale, size, crop_pct, crop_mode = PUBLISHED[name]
    assert (config.depths, config.dim, config.in_dim, config.num_heads) == (depths, dim, in_dim, heads)
    assert (config.window_size, config.layer_scale, config.image_size) == (window, layer_scale, size)
    assert (config.crop_pct, config.crop_mode, config.num_labels) == (crop_pct, crop_mode, 1000)


def test_presets_cover_every_release_plus_a_tiny_one():
    assert set(PRESETS) == set(PUBLISHED) | {"mambavision-tiny-test"}


@pytest.mark.parametrize("alias", ["nvidia/MambaVision-T-1K", "MambaVision-T", "mambavision_t", " MAMBAVISION-T "])
def test_presets_accept_hub_style_names(alias):
    assert MambaVisionConfig.from_preset(alias).to_dict() == MambaVisionConfig.from_preset("mambavision-t").to_dict()


def test_preset_overrides_and_unknown_names():
    assert MambaVisionConfig.from_preset("mambavision-b", num_labels=5, drop_path_rate=0.0).num_labels == 5
    labelled = MambaVisionConfig.from_preset("mambavision-tiny-test", id2label={0: "cat", 1: "dog"})
    assert labelled.num_labels == 2 and labelled.id2label == {0: "cat", 1: "dog"}
    with pytest.raises(ValueError, match=r"unknown MambaVision preset 'mambavision-xl'.*mambavision-l2-512-21k"):
        MambaVisionConfig.from_preset("mambavision-xl")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_save_and_load_round_trip(name, tmp_path):
    config = MambaVisionConfig.from_preset(name, out_features=["stage2", "stage4"])
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MambaVisionConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.out_indices == [2, 4]


def test_nvidia_config_json_loads_as_ours_without_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(NVIDIA_L_CONFIG))
    (tmp_path / "configuration_mambavision.py").write_text("raise RuntimeError('remote code must not run')\n")
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is MambaVisionConfig
    assert (config.depths, config.dim, config.layer_scale) == ([3, 3, 10, 5], 196, 1e-5)
    assert config.num_heads == [4, 8, 16, 32]
    assert config.num_labels == 1000  # no id2label in the file: NVIDIA's 1000 classes
    assert config.image_size == 224  # follows from window_size [.., 7]: 7 * 32
    assert config.architectures == ["MambaVisionModelForImageClassification"]


def test_preprocessing_fields_and_labels_of_nvidia_t_config_are_kept():
    labels = {str(index): f"class {index}" for index in range(1000)}
    config = MambaVisionConfig(
        **{k: v for k, v in NVIDIA_L_CONFIG.items() if k != "model_type"},
        id2label=labels,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        crop_mode="center",
        crop_pct=0.875,
    )
    assert config.num_labels == 1000 and config.id2label[999] == "class 999"
    assert (config.mean, config.std, config.crop_pct, config.crop_mode) == (
        [0.485, 0.456, 0.406],
        [0.229, 0.224, 0.225],
        0.875,
        "center",
    )


def test_num_labels_and_id2label_as_transformers():
    config = MambaVisionConfig(num_labels=3)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    config = MambaVisionConfig(id2label={"0": "cat", "1": "dog"})
    assert config.num_labels == 2 and config.id2label == {0: "cat", 1: "dog"}
    config.num_labels = 4
    assert len(config.id2label) == 4


def test_image_size_follows_the_stage4_window_unless_given():
    assert MambaVisionConfig(window_size=[8, 8, 32, 16]).image_size == 512
    assert MambaVisionConfig(window_size=[8, 8, 32, 16], image_size=480).image_size == 480


def test_backbone_stage_selection():
    config = MambaVisionConfig(out_indices=[1, -1])
    assert config.stage_names == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert config.out_features == ["stage1", "stage4"]
    with pytest.raises(ValueError, match="out_features must be a subset of stage_names"):
        MambaVisionConfig(out_features=["stage5"])


BAD_VALUES = [
        ({"depths": [1, 3, 8]}, r"depths must have 4 entries \(one per stage\), got 3: \[1, 3, 8\]"),
        ({"depths": [1, 3, 0, 4]}, "depths must be a list of 4 positive integers"),
        ({"depths": 4}, "depths must have 4 entries"),
        ({"num_heads": [2, 4, 8]}, "num_heads must have 4 entries"),
        ({"num_heads": [2, 4, 7, 16]}, r"num_heads\[2\] = 7 must divide the stage-3 width dim \* 4 = 320"),
        ({"num_heads": [2, 4, 8, 3]}, r"num_heads\[3\] = 3 must divide the stage-4 width dim \* 8 = 640"),
        ({"window_size": [8, 8, 14, 0]}, "window_size must be a list of 4 positive integers"),
        ({"dim": 0}, "dim must be a positive integer, got 0"),
        ({"dim": 80.0}, "dim must be a positive integer"),
        ({"in_dim": True}, "in_dim must be a positive integer"),
        ({"mlp_ratio": 0}, "mlp_ratio must be a finite positive number"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be a number in \[0, 1\)"),
        ({"attn_drop_rate": -0.1}, "attn_drop_rate must be a number"),
        ({"layer_scale": "1e-5"}, "layer_scale must be a finite number .* or None"),
        ({"layer_scale_conv": [1.0]}, "layer_scale_conv must be a finite number"),
        ({"qkv_bias": 1}, "qkv_bias must be True or False"),
        ({"scan_backend": "triton"}, "scan_backend must be one of"),
        ({"state_size": 0}, "state_size must be a positive integer"),
        ({"mean": [0.5, 0.5]}, r"mean must be a list of 3 finite numbers \(one per channel\)"),
        ({"std": [0.2, 0.0, 0.2]}, "std must be positive"),
        ({"crop_pct": 0.0}, r"crop_pct must be a number in \(0, 1\]"),
        ({"crop_pct": 1.5}, "crop_pct must be a number"),
        ({"crop_mode": "border"}, "crop_mode must be one of"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "message"), BAD_VALUES)
def test_invalid_values_name_the_field_and_the_allowed_form(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MambaVisionConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), BAD_VALUES)
def test_assigning_an_invalid_value_raises_the_same_error_and_changes_nothing(kwargs, message):
    config = MambaVisionConfig()
    before = config.to_dict()
    ((name, value),) = kwargs.items()
    with pytest.raises(ValueError, match=message):
        setattr(config, name, value)
    assert config.to_dict() == before


def test_every_float_field_of_every_preset_is_listed():
    for name in PRESETS:
        floats = {k for k, v in vars(MambaVisionConfig.from_preset(name)).items() if isinstance(v, float)}
        assert floats <= set(FLOAT_FIELDS), name


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_float_fields_refuse_nan_and_infinity_at_the_door_and_on_assignment(field, value):
    message = rf"{field} must be a .*number.*, got {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=message):
        MambaVisionConfig(**{field: value})
    config = MambaVisionConfig()
    with pytest.raises(ValueError, match=message):
        setattr(config, field, value)


@pytest.mark.parametrize("field", ["mean", "std"])
@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_per_channel_statistics_refuse_nan_and_infinity(field, value):
    message = rf"{field} must be a list of 3 finite numbers \(one per channel\), got \[0.5, {value}, 0.5\]"
    with pytest.raises(ValueError, match=message):
        MambaVisionConfig(**{field: [0.5, value, 0.5]})
    with pytest.raises(ValueError, match=message):
        setattr(MambaVisionConfig(), field, [0.5, value, 0.5])


def test_fields_that_constrain_each_other_change_together_through_update():
    config = MambaVisionConfig()
    with pytest.raises(ValueError, match=r"num_channels=1 conflicts with the other fields: mean must be a list of 1"):
        config.num_channels = 1
    with pytest.raises(ValueError, match=r"num_heads\[2\] = 8 must divide the stage-3 width dim \* 4 = 324"):
        config.dim = 81
    config.update({"num_channels": 1, "mean": [0.5], "std": [0.25], "dim": 96, "num_heads": [1, 1, 3, 3]})
    assert (config.num_channels, config.mean, config.std, config.hidden_sizes[0]) == (1, [0.5], [0.25], 96)
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        config.update({"in_dim": 16, "crop_mode": "border"})
    assert (config.in_dim, config.crop_mode) == (32, "center")  # a refused update changes nothing


def test_good_assignments_are_kept_and_survive_save_and_load(tmp_path):
    config = MambaVisionConfig.from_preset("mambavision-tiny-test")
    config.drop_path_rate, config.layer_scale, config.scan_backend = 0.1, 1e-5, "pytorch"
    config.update({"out_features": ["stage2", "stage4"], "crop_pct": 0.9})
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert (loaded.drop_path_rate, loaded.layer_scale, loaded.scan_backend) == (0.1, 1e-5, "pytorch")
    assert loaded.out_indices == [2, 4] and loaded.crop_pct == 0.9
    assert AutoConfig.from_pretrained(tmp_path, crop_mode="squash").crop_mode == "squash"


def test_loading_a_config_or_a_model_with_a_bad_override_raises(tmp_path):
    MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-tiny-test")).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="drop_path_rate must be a number in"):
        AutoConfig.from_pretrained(tmp_path, drop_path_rate=math.nan)
    with pytest.raises(ValueError, match="layer_scale must be a finite number"):
        AutoModelForImageClassification.from_pretrained(tmp_path, layer_scale=math.inf)
