"""MambaVisionConfig: NVIDIA's field names, presets of every released variant, validation at the door, and the
ImageNet-1k class names of 1000-class configs that name none (NVIDIA's)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageClassification, pipeline

from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification, MambaVisionImageProcessor, hub
from mamba_multimodal.configuration import imagenet_labels
from mamba_multimodal.configuration.configuration_mambavision import PRESETS
from mamba_multimodal.configuration.imagenet_labels import IMAGENET_1K_LABELS

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
        ({"depths": 4}, r"Field 'depths' with value 4 doesn't match any type in \(list\[int\], tuple"),
        ({"num_heads": [2, 4, 8]}, "num_heads must have 4 entries"),
        ({"num_heads": [2, 4, 7, 16]}, r"num_heads\[2\] = 7 must divide the stage-3 width dim \* 4 = 320"),
        ({"num_heads": [2, 4, 8, 3]}, r"num_heads\[3\] = 3 must divide the stage-4 width dim \* 8 = 640"),
        ({"window_size": [8, 8, 14, 0]}, "window_size must be a list of 4 positive integers"),
        ({"dim": 0}, "dim must be a positive integer, got 0"),
        ({"dim": 80.0}, "Field 'dim' expected int, got float"),
        ({"in_dim": True}, "Field 'in_dim' expected int, got bool|in_dim must be a positive integer"),  # hub 2.x|1.x
        ({"mlp_ratio": 0}, "mlp_ratio must be a finite positive number"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be a number in \[0, 1\)"),
        ({"attn_drop_rate": -0.1}, "attn_drop_rate must be a number"),
        ({"layer_scale": "1e-5"}, "Field 'layer_scale' with value '1e-5' doesn't match any type in .*float.*None"),
        ({"layer_scale_conv": [1.0]}, "Field 'layer_scale_conv' with value \\[1.0\\] doesn't match any type"),
        ({"qkv_bias": 1}, "Field 'qkv_bias' expected bool, got int"),
        ({"scan_backend": "triton"}, r"Field 'scan_backend' expected one of \('auto', 'cuda', 'cpu', 'pytorch', 're"),
        ({"state_size": 0}, "state_size must be a positive integer"),
        ({"mean": [0.5, 0.5]}, r"mean must be a list of 3 finite numbers \(one per channel\)"),
        ({"std": [0.2, 0.0, 0.2]}, "std must be positive"),
        ({"crop_pct": 0.0}, r"crop_pct must be a number in \(0, 1\]"),
        ({"crop_pct": 1.5}, "crop_pct must be a number"),
        ({"crop_mode": "border"}, r"Field 'crop_mode' expected one of \('center', 'squash'\), got border"),
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
    with pytest.raises(ValueError, match="Field 'crop_mode' expected one of"):
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


# ------------------------------------------------------------------------------------ ImageNet-1k class names
# Known ImageNet-1k indices (torchvision's / timm's / transformers' numbering), with their WordNet ids.
KNOWN_IMAGENET_CLASSES = {
    0: ("n01440764", "tench, Tinca tinca"),
    1: ("n01443537", "goldfish, Carassius auratus"),
    281: ("n02123045", "tabby, tabby cat"),
    409: ("n02708093", "analog clock"),
    530: ("n03196217", "digital clock"),
    731: ("n03970156", "plunger, plumber's helper"),
    999: ("n15075141", "toilet tissue, toilet paper, bathroom tissue"),
}


def test_imagenet_names_sit_at_their_known_indices():
    assert isinstance(IMAGENET_1K_LABELS, tuple) and len(IMAGENET_1K_LABELS) == 1000
    for index, (_, name) in KNOWN_IMAGENET_CLASSES.items():
        assert IMAGENET_1K_LABELS[index] == name, index
    assert [i for i, name in enumerate(IMAGENET_1K_LABELS) if name == "crane"] == [134, 517]  # the only shared name
    assert len(set(IMAGENET_1K_LABELS)) == 999


def test_imagenet_index_is_the_rank_of_the_sorted_wordnet_id():
    """Each line of the module says `"name",  # index wnid`: the indices count up and the wnids are sorted."""
    pattern = re.compile(r'^    "(?P<name>[^"]+)",  # (?P<index>\d+) (?P<wnid>n\d{8})\b', re.MULTILINE)
    rows = [m.groupdict() for m in pattern.finditer(Path(imagenet_labels.__file__).read_text())]
    assert [int(row["index"]) for row in rows] == list(range(1000))
    assert [row["name"] for row in rows] == list(IMAGENET_1K_LABELS)
    wnids = [row["wnid"] for row in rows]
    assert wnids == sorted(set(wnids))
    for index, (wnid, _) in KNOWN_IMAGENET_CLASSES.items():
        assert wnids[index] == wnid


def test_nvidia_config_json_without_id2label_gets_the_imagenet_names(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(NVIDIA_L_CONFIG))
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.id2label == dict(enumerate(IMAGENET_1K_LABELS))
    assert config.id2label[731] == "plunger, plumber's helper"
    assert config.label2id["tabby, tabby cat"] == 281 and config.label2id["crane"] == 517
    assert len(config.label2id) == 999  # "crane" names two classes


@pytest.mark.parametrize("build", [lambda: MambaVisionConfig(), lambda: MambaVisionConfig(num_labels=1000)])
def test_1000_unnamed_labels_are_the_imagenet_classes(build):
    assert build().id2label[409] == "analog clock"


def test_other_label_counts_keep_their_own_labels():
    assert MambaVisionConfig(num_labels=10).id2label == {i: f"LABEL_{i}" for i in range(10)}
    assert MambaVisionConfig.from_preset("mambavision-tiny-test").id2label[9] == "LABEL_9"
    named = MambaVisionConfig(id2label={"0": "cat", "1": "dog"})
    assert named.id2label == {0: "cat", 1: "dog"}


def test_1000_given_labels_are_kept(tmp_path):
    own = {index: f"class {index}" for index in range(1000)}
    assert MambaVisionConfig(id2label=own).id2label == own
    placeholders = {str(index): f"LABEL_{index}" for index in range(1000)}  # written out, so chosen: kept
    (tmp_path / "config.json").write_text(json.dumps({**NVIDIA_L_CONFIG, "id2label": placeholders}))
    assert AutoConfig.from_pretrained(tmp_path).id2label[731] == "LABEL_731"


def test_imagenet_names_are_written_to_config_json_and_read_back(tmp_path):
    MambaVisionConfig.from_preset("mambavision-t").save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert (
        written["id2label"]["731"] == "plunger, plumber's helper"
        and written["label2id"]["goldfish, Carassius auratus"] == 1
    )
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert loaded.id2label == dict(enumerate(IMAGENET_1K_LABELS))


def test_the_remote_code_bundle_ships_the_imagenet_names():
    sources = hub.bundle_sources("mambavision")
    assert "imagenet_labels.py" in sources
    assert "from .imagenet_labels import IMAGENET_1K_LABELS" in sources["configuration_mambavision.py"]
    namespace = {}
    exec(sources["imagenet_labels.py"], namespace)
    assert namespace["IMAGENET_1K_LABELS"] == IMAGENET_1K_LABELS


def test_pipeline_on_an_nvidia_style_checkpoint_answers_imagenet_names(tmp_path):
    """The issue's case: a 1000-class checkpoint whose config.json has no id2label (as NVIDIA's), tiny here."""
    torch.manual_seed(0)
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=1000)
    MambaVisionForImageClassification(config).save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    del written["id2label"], written["label2id"]
    (tmp_path / "config.json").write_text(json.dumps(written))
    model = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    processor = MambaVisionImageProcessor.from_model_config(model.config)
    classifier = pipeline("image-classification", model=model, image_processor=processor, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, size=(80, 96, 3), dtype=np.uint8)
    predictions = classifier(Image.fromarray(image), top_k=5)
    with torch.no_grad():
        logits = model(processor(image, return_tensors="pt").pixel_values).logits[0]
    assert [p["label"] for p in predictions] == [IMAGENET_1K_LABELS[i] for i in logits.topk(5).indices.tolist()]
    assert not any(p["label"].startswith("LABEL_") for p in predictions)
