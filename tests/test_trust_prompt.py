"""With the package installed, loading a folder it saved never asks "Do you wish to run the custom code? [y/N]"
(which blocks 15 s in a terminal): the folder's `auto_map` is for machines without the package, and transformers
asks only about kinds of processor the family has none of."""

import builtins

import pytest
import transformers
from transformers import AutoProcessor, pipeline
from transformers.models.auto.image_processing_auto import AutoImageProcessor  # 5.17's top-level one needs torchvision

from mamba_multimodal import (
    CoupledMambaConfig,
    CoupledMambaFeatureProcessor,
    CoupledMambaForSequenceClassification,
    MambaVisionConfig,
    MambaVisionForImageClassification,
    MambaVisionImageProcessor,
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    mambavision, coupled = tmp_path_factory.mktemp("mambavision"), tmp_path_factory.mktemp("coupled")
    model = MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-tiny-test"))
    model.save_pretrained(mambavision)
    config = CoupledMambaConfig(input_sizes={"text": 4}, hidden_size=8, num_hidden_layers=1)
    CoupledMambaForSequenceClassification(config).save_pretrained(coupled)
    return {"mambavision": str(mambavision), "coupled": str(coupled)}


LOADS = {
    "image-classification pipeline": (
        lambda folders: pipeline("image-classification", model=folders["mambavision"]).image_processor,
        MambaVisionImageProcessor,
    ),
    "AutoProcessor of a feature folder": (
        lambda folders: AutoProcessor.from_pretrained(folders["coupled"]),
        CoupledMambaFeatureProcessor,
    ),
    "AutoProcessor of an image folder": (
        lambda folders: AutoProcessor.from_pretrained(folders["mambavision"]),
        MambaVisionImageProcessor,
    ),
    "AutoImageProcessor": (
        lambda folders: AutoImageProcessor.from_pretrained(folders["mambavision"]),
        MambaVisionImageProcessor,
    ),
    "AutoModel": (
        lambda folders: transformers.AutoModelForImageClassification.from_pretrained(folders["mambavision"]),
        MambaVisionForImageClassification,
    ),
}


@pytest.mark.parametrize(("load", "expected"), LOADS.values(), ids=LOADS.keys())
def test_loading_a_saved_folder_asks_nothing_and_uses_the_installed_class(folders, load, expected, monkeypatch):
    questions = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": questions.append(prompt) or "n")
    assert type(load(folders)) is expected
    assert questions == []


def test_an_explicit_trust_remote_code_is_still_honoured(folders):
    processor = AutoImageProcessor.from_pretrained(folders["mambavision"], trust_remote_code=True)
    assert type(processor).__name__ == "MambaVisionImageProcessor"
