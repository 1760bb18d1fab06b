"""The registry's entries are data naming classes: each name resolves to the class it names, and the facts stored
beside them agree with the classes (model types, processors' families, tiny configs and their variants)."""

import pytest

from mamba_multimodal import MambaVisionConfig
from mamba_multimodal.registry import APACHE_LICENSE, FAMILIES, NVIDIA_LICENSE, resolve
from mamba_multimodal.training.tasks import TASKS

FAMILY_LIST = list(FAMILIES.values())


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.name)
def test_every_name_resolves_to_the_class_it_names(family):
    paths = [family.config_name, *family.extra_config_names, *family.model_names.values(),
             *family.processor_names.values()]  # fmt: skip
    for path in paths:
        assert resolve(path).__name__ == path.rpartition(".")[2]
    assert family.config_class.model_type == family.model_type
    assert type(family.tiny_config()) is family.config_class


@pytest.mark.parametrize("task", TASKS.values(), ids=list(TASKS))
def test_every_task_trains_a_class_its_family_registers(task):
    """So the generic tests, which run over each family's `auto_models`, cover every class a task trains."""
    assert task.load("model_class") in FAMILIES[task.family].auto_models.values()


@pytest.mark.parametrize("family", [f for f in FAMILY_LIST if f.processor_names], ids=lambda f: f.name)
def test_each_processor_names_the_family_that_lists_it(family):
    assert {resolve(path).family_name for path in family.processor_names.values()} == {family.name}


def test_the_tiny_mambavision_is_the_test_preset():
    expected = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=3)
    assert FAMILIES["mambavision"].tiny_config().to_dict() == expected.to_dict()


def test_the_vlm_variant_has_the_tiny_mambavision_as_its_tower():
    config = FAMILIES["vlm_mamba"].tiny_config("mambavision-tower")
    tower = {**config.vision_config.to_dict(), "_name_or_path": ""}
    headless = {"id2label": None, "label2id": None}  # a VLM's tower has no head: its labels are dropped
    assert tower == {**FAMILIES["mambavision"].tiny_config().to_dict(), "_name_or_path": "", **headless}
    assert config.text_config.to_dict() == FAMILIES["vlm_mamba"].tiny_config().text_config.to_dict()


def test_tiny_configs_are_fresh_objects():
    family = FAMILIES["vlm_mamba"]
    family.tiny_config().vision_config.hidden_size = 999
    assert family.tiny_config().vision_config.hidden_size == 16


@pytest.mark.parametrize(
    ("family", "auto_class", "pipeline_tag"),
    [
        ("mambavision", "AutoModelForImageClassification", "image-classification"),
        ("mambavision", "AutoBackbone", "image-feature-extraction"),
        ("vision_mamba", "AutoModel", "image-feature-extraction"),
        ("vlm_mamba", "AutoModelForImageTextToText", "image-text-to-text"),
        ("vlm_mamba", "AutoModel", None),
        ("coupled_mamba", "AutoModelForSequenceClassification", None),
    ],
)
def test_pipeline_tags(family, auto_class, pipeline_tag):
    assert FAMILIES[family].pipeline_tag(auto_class) == pipeline_tag


def test_models_fine_tuned_from_nvidia_weights_carry_nvidias_licence():
    assert FAMILIES["mambavision"].license_for("nvidia/MambaVision-T-1K") == NVIDIA_LICENSE
    assert FAMILIES["mambavision"].license_for("me/mambavision-digits") == APACHE_LICENSE
    assert FAMILIES["mambavision"].license_for(None) == APACHE_LICENSE
    assert FAMILIES["vlm_mamba"].license_for("nvidia/x") == NVIDIA_LICENSE
    assert FAMILIES["coupled_mamba"].license_for("me/mosei") == APACHE_LICENSE
