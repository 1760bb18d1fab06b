"""A mistake in a configuration is one ValueError of one line naming the field, at construction: a sub-config's
values are checked as a top-level config's (and named `text_config.x`), and a keyword that no field knows is refused
with the closest field name, where transformers' `PreTrainedConfig` would keep it as an attribute nothing reads. A
saved `config.json` with such a key still loads, with a warning naming it."""

import json

import pytest
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from mamba_multimodal import CoupledMambaConfig, MambaVisionConfig, VLMambaConfig
from mamba_multimodal.configuration.configuration_mamba import MambaConfig
from mamba_multimodal.configuration.configuration_vision_mamba import VisionMambaConfig
from mamba_multimodal.training.sentiment import build_sentiment_model

MISTAKES = {
    "negative text width": (
        lambda: VLMambaConfig(text_config={"hidden_size": -64}),
        "text_config.hidden_size must be a positive integer, got -64",
    ),
    "zero text layers": (
        lambda: VLMambaConfig(text_config=MambaConfig(num_hidden_layers=0)),
        "num_hidden_layers must be a positive integer, got 0",
    ),
    "negative tower width": (
        lambda: VLMambaConfig(vision_config={"hidden_size": -3}),
        "vision_config.hidden_size must be a positive integer, got -3",
    ),
    "mistyped text field": (
        lambda: VLMambaConfig(text_config={"hiden_size": 64}),
        "text_config.hiden_size is not a field of MambaConfig; did you mean 'hidden_size'?",
    ),
    "mistyped MambaVision field in a tower": (
        lambda: VLMambaConfig(vision_config={"model_type": "mambavision", "dpeths": [1, 1, 1, 1]}),
        "vision_config.dpeths is not a field of MambaVisionConfig; did you mean 'depths'?",
    ),
    "derived image_seq_length": (
        lambda: VLMambaConfig(image_seq_length=-1),
        "image_seq_length is derived from the other fields, not set (Image tokens per image:",
    ),
    "mistyped coupling": (
        lambda: CoupledMambaConfig(cupling="sum"),
        "cupling is not a field of CoupledMambaConfig; did you mean 'coupling'?",
    ),
    "mistyped depths": (
        lambda: MambaVisionConfig(dpeths=[1, 1, 1, 1]),
        "dpeths is not a field of MambaVisionConfig; did you mean 'depths'?",
    ),
    "mistyped stem": (
        lambda: VisionMambaConfig(stme="conv"),
        "stme is not a field of VisionMambaConfig; did you mean 'stem'?",
    ),
    "unknown word": (lambda: CoupledMambaConfig(zzz=1), "zzz is not a field of CoupledMambaConfig"),
    "sentiment overrides": (
        lambda: build_sentiment_model({"text": 8, "audio": 4}, cupling="sum"),
        "cupling is not a field of CoupledMambaConfig; did you mean 'coupling'?",
    ),
}


@pytest.mark.parametrize(("make", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_config_mistake_is_one_line_naming_the_field(make, message):
    with pytest.raises(ValueError) as caught:
        make()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "keywords",
    [{"num_labels": 3}, {"torch_dtype": "float32"}, {"out_features": ["stage2"]}, {"transformers_version": "4.40.0"}],
    ids=lambda keywords: next(iter(keywords)),
)
def test_transformers_own_keywords_still_pass(keywords):
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", **keywords)
    assert config.num_labels == keywords.get("num_labels", 10)


def test_a_saved_config_with_a_key_no_field_knows_loads_with_a_warning_naming_it(tmp_path):
    CoupledMambaConfig(hidden_size=8, coupling="sum").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "cupling": "none"}))
    with CaptureLogger(logging.get_logger("mamba_multimodal.configuration.validation")) as captured:
        config = CoupledMambaConfig.from_pretrained(tmp_path)
    assert config.coupling == "sum" and config.hidden_size == 8
    assert "cupling is not a field of CoupledMambaConfig; did you mean 'coupling'?" in captured.out


TOWERS = {
    "preset dict": lambda: MambaVisionConfig.from_preset("mambavision-tiny-test").to_dict(),
    "default MambaVision (ImageNet names)": lambda: {"model_type": "mambavision", "dim": 16, "in_dim": 8},
    "a classifier's config": lambda: MambaVisionConfig(dim=16, in_dim=8, id2label={0: "cat", 1: "dog"}),
}


@pytest.mark.parametrize("tower", TOWERS.values(), ids=TOWERS.keys())
def test_the_labels_of_a_headless_tower_stay_out_of_the_vlm_config(tower, tmp_path):
    given = tower()
    VLMambaConfig(vision_config=given).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["vision_config"].get("id2label") is None and saved["vision_config"].get("label2id") is None
    assert (tmp_path / "config.json").stat().st_size < 8_000  # 76 KB with the ImageNet names
    if isinstance(given, MambaVisionConfig):
        assert given.id2label == {0: "cat", 1: "dog"}  # the caller's config keeps its labels


def test_a_vlm_config_saved_with_tower_labels_still_loads(tmp_path):
    tower = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=1000).to_dict()
    VLMambaConfig().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "vision_config": tower}))
    assert len(tower["id2label"]) == 1000
    config = VLMambaConfig.from_pretrained(tmp_path)
    assert config.vision_mode == "mambavision" and config.vision_config.id2label is None
