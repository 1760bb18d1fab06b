"""A truncated or corrupt `model.safetensors` is one error naming the file (safetensors' own names none), whichever
model class or Auto class loads it."""

import pytest
import transformers

from mamba_multimodal import (
    CoupledMambaConfig,
    CoupledMambaForSequenceClassification,
    MambaForCausalLM,
    MambaVisionConfig,
    MambaVisionForImageClassification,
)
from mamba_multimodal.configuration.configuration_mamba import MambaConfig

MODELS = {
    "coupled": lambda: CoupledMambaForSequenceClassification(
        CoupledMambaConfig(input_sizes={"text": 4}, hidden_size=8, num_hidden_layers=1)
    ),
    "mambavision": lambda: MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-tiny-test")),
    "mamba lm": lambda: MambaForCausalLM(MambaConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1)),
}
LOADERS = {
    "own class": lambda model, folder: type(model).from_pretrained(folder),
    "auto class": lambda model, folder: transformers.AutoModel.from_pretrained(folder),
}
NOT_OURS = {("mamba lm", "auto class")}  # model_type "mamba" is transformers' own MambaModel to the Auto classes
CASES = [(model, loader) for model in MODELS for loader in LOADERS if (model, loader) not in NOT_OURS]


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    """{model name: (model, its saved folder)}, each saved on first use."""

    class Saved(dict):
        def __missing__(self, name):
            model, folder = MODELS[name](), tmp_path_factory.mktemp("model")
            model.save_pretrained(folder)
            self[name] = model, folder
            return self[name]

    return Saved()


@pytest.mark.parametrize("keep", [0.5, 100, 4], ids=["half", "inside the header", "no header"])
@pytest.mark.parametrize(("model_name", "loader"), CASES, ids=[" - ".join(case) for case in CASES])
def test_a_truncated_weights_file_is_named_in_one_line(saved_folders, model_name, loader, keep):
    model, folder = saved_folders[model_name]
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    try:
        with pytest.raises(OSError) as caught:
            LOADERS[loader](model, folder)
    finally:
        weights.write_bytes(data)
    assert str(caught.value).startswith(f"{weights}: truncated or corrupt safetensors file (")
    assert "\n" not in str(caught.value)
