"""CoupledMambaConfig: the paper's defaults, derived sizes, validation at the door, save/load and Auto registration."""

import math
import re

import pytest
from transformers import AutoConfig, AutoModelForSequenceClassification

from mamba_multimodal import CoupledMambaConfig, CoupledMambaForSequenceClassification

TINY = {"input_sizes": {"text": 6, "audio": 4}, "hidden_size": 8, "state_size": 4, "num_hidden_layers": 1}
FLOAT_FIELDS = (
    "classifier_dropout",
    "layer_norm_epsilon",
    "time_step_min",
    "time_step_max",
    "time_step_floor",
    "time_step_scale",
    "initializer_range",
)


def test_defaults_are_the_papers_mosei_model():
    config = CoupledMambaConfig()
    assert config.model_type == "coupled_mamba"
    assert config.modality_input_sizes == {"text": 768, "audio": 74, "vision": 35}
    assert (config.hidden_size, config.state_size, config.expand, config.conv_kernel) == (128, 64, 2, 4)
    assert config.num_hidden_layers == 3
    assert config.time_step_rank == 8  # the paper's d_state / 8
    assert config.coupling == "mean"
    assert (config.pooling, config.fusion, config.regression_loss) == ("mean", "concat", "l1")
    assert config.num_labels == 1 and config.scan_backend == "auto"


def test_derived_sizes():
    config = CoupledMambaConfig(hidden_size=16, expand=3, fusion="concat")
    assert config.intermediate_size == 48
    assert config.num_modalities == 3 and config.fused_size == 48
    assert CoupledMambaConfig(hidden_size=16, fusion="weighted").fused_size == 16
    assert CoupledMambaConfig(state_size=20).time_step_rank == math.ceil(20 / 8)
    assert CoupledMambaConfig(time_step_rank=16).time_step_rank == 16  # the released code's ceil(d_model / 8)


def test_modalities_from_a_dict_keep_their_order():
    config = CoupledMambaConfig(input_sizes={"vision": 20, "audio": 5})
    assert config.modalities == ["vision", "audio"] and config.input_sizes == [20, 5]


def test_classification_labels():
    config = CoupledMambaConfig(num_labels=7)
    assert config.num_labels == 7 and config.problem_type is None
    assert CoupledMambaConfig(num_labels=3, problem_type="single_label_classification").num_labels == 3


BAD_VALUES = [
        ({"coupling": "product"}, "coupling"),
        ({"pooling": "first"}, "pooling"),
        ({"fusion": "attention"}, "fusion"),
        ({"regression_loss": "huber"}, "regression_loss"),
        ({"scan_backend": "triton"}, "scan_backend"),
        ({"inference_chunk_tokens": 0}, "inference_chunk_tokens"),
        ({"inference_chunk_tokens": 64.0}, "inference_chunk_tokens"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"head_activation": "softmax"}, "head_activation"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"state_size": 2.5}, "state_size"),
        ({"num_hidden_layers": True}, "num_hidden_layers"),
        ({"conv_kernel": 1}, "conv_kernel"),
        ({"time_step_rank": "big"}, "time_step_rank"),
        ({"head_hidden_size": -1}, "head_hidden_size"),
        ({"classifier_dropout": 1.0}, "classifier_dropout"),
        ({"time_step_min": 0.5, "time_step_max": 0.1}, "time_step_min"),
        ({"layer_norm_epsilon": 0}, "layer_norm_epsilon"),
        ({"use_bias": "yes"}, "use_bias"),
        ({"modalities": ["text", "text"], "input_sizes": [4, 4]}, "modalities"),
        ({"modalities": ["text-1"], "input_sizes": [4]}, "modalities"),
        ({"modalities": ["text", "audio"], "input_sizes": [4]}, "input_sizes"),
        ({"input_sizes": [768, 0, 35]}, "input_sizes"),
        ({"modalities": ["a"], "input_sizes": {"b": 3}}, "modalities"),
        ({"problem_type": "ranking"}, "problem_type"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "field"), BAD_VALUES)
def test_bad_values_raise_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        CoupledMambaConfig(**overrides)


@pytest.mark.parametrize(("overrides", "field"), [case for case in BAD_VALUES if len(case[0]) == 1])
def test_assigning_a_bad_value_raises_naming_the_field_and_changes_nothing(overrides, field):
    config = CoupledMambaConfig()
    before = config.to_dict()
    ((name, value),) = overrides.items()
    with pytest.raises(ValueError, match=field):
        setattr(config, name, value)
    assert config.to_dict() == before


def test_an_unknown_pooling_is_refused_on_assignment_too():
    config = CoupledMambaConfig()
    with pytest.raises(ValueError, match=r"Field 'pooling' expected one of \('mean', 'max', 'last'\), got median"):
        config.pooling = "median"
    assert config.pooling == "mean"


def test_the_float_fields_are_all_listed():
    assert {name for name, value in vars(CoupledMambaConfig()).items() if isinstance(value, float)} == set(FLOAT_FIELDS)


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_float_fields_refuse_nan_and_infinity_at_the_door_and_on_assignment(field, value):
    message = rf"{field} must be a .*number.*, got {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=message):
        CoupledMambaConfig(**{field: value})
    config = CoupledMambaConfig()
    with pytest.raises(ValueError, match=message):
        setattr(config, field, value)
    assert math.isfinite(getattr(config, field))


def test_fields_that_constrain_each_other_change_together_through_update():
    config = CoupledMambaConfig()
    with pytest.raises(ValueError, match=r"time_step_min \(0.5\) must not exceed time_step_max \(0.1\)"):
        config.time_step_min = 0.5
    with pytest.raises(
        ValueError, match=r"modalities=\['text', 'audio'\] conflicts with the other fields: input_sizes"
    ):
        config.modalities = ["text", "audio"]
    config.update({"time_step_min": 0.5, "time_step_max": 0.8, "modalities": ["text", "audio"], "input_sizes": [8, 4]})
    assert (config.time_step_min, config.time_step_max) == (0.5, 0.8)
    assert config.modality_input_sizes == {"text": 8, "audio": 4}
    with pytest.raises(ValueError, match="Field 'pooling' expected one of"):
        config.update({"hidden_size": 16, "pooling": "median"})
    assert (config.hidden_size, config.pooling) == (128, "mean")  # a refused update changes nothing


def test_good_assignments_are_kept_and_survive_save_and_load(tmp_path):
    config = CoupledMambaConfig(**TINY)
    config.pooling, config.classifier_dropout, config.scan_backend = "max", 0.25, "pytorch"
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert (loaded.pooling, loaded.classifier_dropout, loaded.scan_backend) == ("max", 0.25, "pytorch")
    assert AutoConfig.from_pretrained(tmp_path, pooling="last").pooling == "last"


def test_loading_a_config_or_a_model_with_a_bad_override_raises(tmp_path):
    CoupledMambaForSequenceClassification(CoupledMambaConfig(**TINY)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="Field 'pooling' expected one of"):
        AutoConfig.from_pretrained(tmp_path, pooling="median")
    with pytest.raises(ValueError, match="Field 'pooling' expected one of"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path, pooling="median")
