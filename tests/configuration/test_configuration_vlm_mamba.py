"""VLMambaConfig and its vision sub-configs validate on assignment too, as at the door (construction: see
tests/modeling/test_modeling_vlm_mamba.py)."""

import math
import re

import pytest
from transformers import AutoConfig, MambaConfig

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
        (tiny_config, "fusion_method", "attention", "fusion_method must be one of"),
        (tiny_config, "projector_hidden_act", "swish2", "projector_hidden_act must be one of"),
        (tiny_config, "projector_num_layers", 0, "projector_num_layers must be a positive int"),
        (tiny_config, "image_token_id", 64, r"image_token_id must be a token id of the language model, in \[0, 64\)"),
        (tiny_config, "vision_feature_layer", 5, "vision_feature_layer must index one of the tower's 3 hidden states"),
        (tiny_config, "vision_config", {"model_type": "vision_mamba"}, "vision_config must be"),
        (tiny_config, "text_config", {"vocab_size": 64}, "text_config must be"),
        (VisionMambaConfig, "hidden_size", 0, "hidden_size must be a positive int"),
        (VisionMambaConfig, "bidirectional", "yes", "bidirectional must be True or False"),
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
    message = rf"layer_norm_epsilon must be a finite number > 0, got {re.escape(repr(value))}"
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
    with pytest.raises(ValueError, match="fusion_method must be one of"):
        AutoConfig.from_pretrained(tmp_path, fusion_method="attention")
