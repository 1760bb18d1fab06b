"""VLMambaConfig and its vision sub-configs validate on assignment too, as at the door (construction: see
tests/modeling/test_modeling_vlm_mamba.py); every config that scans has scan_backend, the text config included."""

import json
import math
import re
from pathlib import Path

import pytest
from transformers import AutoConfig, MambaConfig

import mamba_multimodal
from mamba_multimodal import CoupledMambaConfig, MambaVisionConfig
from mamba_multimodal.configuration.configuration_mamba import MambaConfig as OurMambaConfig
from mamba_multimodal.configuration.configuration_vlm_mamba import (
    VisionMambaConfig,
    VLMambaConfig,
    VLMambaPatchConfig,
)


def tiny_config() -> VLMambaConfig:
    text = MambaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, state_size=8, use_mambapy=False)
    return VLMambaConfig(vision_config=VisionMambaConfig(hidden_size=16, num_hidden_layers=2), text_config=text)


@pytest.mark.parametrize(
    ("make", "name", "value", "message"),
    [
        (tiny_config, "fusion_method", "attention", "Field 'fusion_method' expected one of"),
        (tiny_config, "projector_hidden_act", "swish2", "Field 'projector_hidden_act' expected one of"),
        (tiny_config, "projector_num_layers", 0, "projector_num_layers must be a positive int"),
        (tiny_config, "image_token_id", 64, r"image_token_id must be a token id of the language model, in \[0, 64\)"),
        (tiny_config, "vision_feature_layer", 5, "vision_feature_layer must index one of the tower's 3 hidden states"),
        (tiny_config, "vision_config", {"model_type": "vision_mamba"}, "vision_config must be"),
        (tiny_config, "text_config", {"vocab_size": 64}, "text_config must be"),
        (VisionMambaConfig, "hidden_size", 0, "hidden_size must be a positive int"),
        (VisionMambaConfig, "bidirectional", "yes", "Field 'bidirectional' expected bool, got str"),
        (VisionMambaConfig, "patch_size", 7, r"image_size \(64\) must be a multiple of patch_size \(7\)"),
        (VLMambaPatchConfig, "patch_size", 7, r"image_size \(64\) must be a multiple of patch_size \(7\)"),
        (VLMambaPatchConfig, "num_channels", 0, "num_channels must be a positive int"),
    ],
)  # fmt: skip
def test_assigning_a_bad_value_raises_naming_the_field_and_changes_nothing(make, name, value, message):
    config = make()
    before = config.to_dict()
    with pytest.raises(ValueError, match=message):
        setattr(config, name, value)
    assert config.to_dict() == before


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_the_float_field_refuses_nan_and_infinity_at_the_door_and_on_assignment(value):
    message = rf"layer_norm_epsilon must be a finite positive number, got {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=message):
        VisionMambaConfig(layer_norm_epsilon=value)
    with pytest.raises(ValueError, match=message):
        VisionMambaConfig().layer_norm_epsilon = value


def test_good_assignments_are_kept_and_survive_save_and_load(tmp_path):
    config = tiny_config()
    config.fusion_method, config.projector_num_layers = "mlp", 1
    config.vision_config.update({"image_size": 32, "patch_size": 16})
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert (loaded.fusion_method, loaded.projector_num_layers, loaded.image_seq_length) == ("mlp", 1, 4)
    with pytest.raises(ValueError, match="Field 'fusion_method' expected one of"):
        AutoConfig.from_pretrained(tmp_path, fusion_method="attention")


# ------------------------------------------------------------------------------------------- scan_backend
SCANNING_CONFIGS = [CoupledMambaConfig, MambaVisionConfig, VisionMambaConfig, OurMambaConfig]


@pytest.mark.parametrize("config_class", SCANNING_CONFIGS, ids=lambda cls: cls.__name__)
def test_every_scanning_config_has_scan_backend_checked_and_saved(config_class, tmp_path):
    assert config_class().scan_backend == "auto"
    with pytest.raises(ValueError, match="Field 'scan_backend' expected one of"):
        config_class(scan_backend="triton")
    config = config_class(scan_backend="cpu")
    config.scan_backend = "pytorch"
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["scan_backend"] == "pytorch"
    assert config_class.from_pretrained(tmp_path).scan_backend == "pytorch"


def test_vision_mamba_blocks_get_the_towers_scan_backend():
    assert VisionMambaConfig(scan_backend="pytorch").mamba_config().scan_backend == "pytorch"


def test_the_text_config_is_a_mamba_config_with_scan_backend_whatever_it_was_given_as(tmp_path):
    given = tiny_config()  # built from transformers' own MambaConfig
    assert type(given.text_config) is OurMambaConfig and isinstance(given.text_config, MambaConfig)
    assert given.text_config.scan_backend == "auto" and given.text_config.model_type == "mamba"
    assert (given.text_config.vocab_size, given.text_config.hidden_size) == (64, 32)
    given.text_config.scan_backend = "pytorch"
    given.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())["text_config"]
    assert written["model_type"] == "mamba" and written["scan_backend"] == "pytorch"
    assert AutoConfig.from_pretrained(tmp_path).text_config.scan_backend == "pytorch"
    # transformers' own class reads it too (scan_backend is one more attribute to it)
    assert MambaConfig(**{k: v for k, v in written.items() if k != "model_type"}).hidden_size == 32
    del written["scan_backend"]  # as the previous release wrote it
    assert VLMambaConfig(text_config=written).text_config.scan_backend == "auto"
    with pytest.raises(ValueError, match=r"text_config\.model_type must be 'mamba', got 'llama'"):
        VLMambaConfig(text_config={"model_type": "llama"})


def test_the_shipped_demo_folder_loads_unchanged_and_round_trips():
    folder = Path(mamba_multimodal.__file__).parent / "training" / "pretrained" / "vlm-mamba-easy-vqa-base"
    written = json.loads((folder / "config.json").read_text())
    config = AutoConfig.from_pretrained(folder)
    assert type(config.text_config) is OurMambaConfig and config.text_config.scan_backend == "auto"
    assert config.vision_config.scan_backend == "auto" and config.image_seq_length == 4
    loaded = json.loads(config.to_json_string(use_diff=False))
    for key in ("text_config", "vision_config"):
        for field, value in written[key].items():
            if key == "vision_config" and field in ("id2label", "label2id"):  # a headless tower's: dropped on load
                assert loaded[key][field] is None  # (folders saved before 0.2 hold ImageNet's names here)
                continue
            assert loaded[key][field] == value, (key, field)
    not_compared = ("text_config", "vision_config", "transformers_version", "use_cache")  # use_cache: a generation
    for field, value in written.items():  # parameter, which transformers drops from a model config it loads
        if field not in not_compared:
            assert loaded[field] == value, field
    assert json.loads(VLMambaConfig.from_dict(loaded).to_json_string(use_diff=False)) == loaded
