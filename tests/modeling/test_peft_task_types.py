"""PEFT's task wrappers over every model: `get_peft_model(model, LoraConfig(task_type=...))` with CAUSAL_LM for the
generating models and SEQ_CLS for the classifiers. The wrappers pass their own keywords (`output_attentions=None`,
`input_ids=None` to a classifier without text, ...); at init LoRA's B is zero, so the wrapped model must give the
outputs, loss and generated tokens of the model it wraps, and the adapters must get a gradient."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import MambaConfig

from mamba_multimodal import (
    CoupledMambaConfig,
    CoupledMambaForSequenceClassification,
    MambaForCausalLM,
    MambaVisionConfig,
    MambaVisionForImageClassification,
    VLMambaConfig,
    VLMambaForConditionalGeneration,
    VLMambaForImageTextClassification,
)

VOCAB = 64
IMAGE_TOKEN = VOCAB - 1
TEXT = {"vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4, "use_mambapy": False}
VISION = {"model_type": "vision_mamba", "image_size": 16, "patch_size": 8, "hidden_size": 16, "state_size": 4}
# Projections of every family's Mamba mixers (PEFT refuses out_proj and conv1d on model_type "mamba").
TARGETS = ["in_proj", "x_proj"]


def mamba_lm():
    model = MambaForCausalLM(MambaConfig(**TEXT))
    input_ids = torch.randint(3, VOCAB, (2, 6))
    return model, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}


def vlm_mamba():
    config = VLMambaConfig(vision_config=VISION, text_config=TEXT, image_token_id=IMAGE_TOKEN)
    image = torch.full((2, config.image_seq_length), IMAGE_TOKEN)
    input_ids = torch.cat([image, torch.randint(3, IMAGE_TOKEN, (2, 5))], dim=1)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}
    inputs["pixel_values"] = torch.randn(2, 3, 16, 16)
    return VLMambaForConditionalGeneration(config), inputs


def coupled_mamba():
    sizes = {"text": 6, "audio": 4, "vision": 3}
    config = CoupledMambaConfig(input_sizes=sizes, hidden_size=16, state_size=4, num_hidden_layers=2, num_labels=3)
    inputs = {f"{m}_features": torch.randn(2, 7, size) for m, size in sizes.items()}
    return CoupledMambaForSequenceClassification(config), {**inputs, "labels": torch.tensor([0, 2])}


def vlm_mamba_classifier():
    config = VLMambaConfig(vision_config=VISION, text_config=TEXT, image_token_id=IMAGE_TOKEN, num_labels=3)
    inputs = {"input_ids": torch.randint(3, IMAGE_TOKEN, (2, 5)), "pixel_values": torch.randn(2, 3, 16, 16)}
    return VLMambaForImageTextClassification(config), {**inputs, "labels": torch.tensor([1, 2])}


def mambavision_classifier():
    model = MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=3))
    return model, {"pixel_values": torch.randn(2, 3, 64, 64), "labels": torch.tensor([0, 2])}


GENERATING = {"mamba": mamba_lm, "vlm_mamba": vlm_mamba}
CLASSIFIERS = {
    "coupled_mamba": coupled_mamba,
    "vlm_mamba_classifier": vlm_mamba_classifier,
    "mambavision": mambavision_classifier,
}


def assert_wrapped_like_the_model(model, inputs, task_type):
    """The wrapped model's loss and logits equal the model's before wrapping; every LoRA B gets a gradient."""
    # The model frozen as PEFT freezes it: on some CPUs (AVX-512) torch's float32 linear runs another kernel, with
    # another summation order, for a weight that requires grad, even under no_grad.
    model.eval().requires_grad_(False)
    with torch.no_grad():
        expected = model(**inputs)
    wrapped = get_peft_model(model, LoraConfig(task_type=task_type, target_modules=TARGETS, r=4))
    outputs = wrapped(**inputs)
    torch.testing.assert_close(outputs.logits, expected.logits, atol=0, rtol=0)
    torch.testing.assert_close(outputs.loss, expected.loss, atol=0, rtol=0)
    outputs.loss.backward()
    lora_b = [p for name, p in wrapped.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)
    return wrapped


@pytest.mark.parametrize("family", GENERATING)
def test_causal_lm_task_type_trains_and_generates_like_the_model(family):
    model, inputs = GENERATING[family]()
    prompt = {name: value for name, value in inputs.items() if name != "labels"}
    settings = {"max_new_tokens": 4, "do_sample": False}
    with torch.no_grad():
        expected = model.eval().generate(**prompt, **settings)
    wrapped = assert_wrapped_like_the_model(model, inputs, "CAUSAL_LM")
    with torch.no_grad():
        generated = wrapped.generate(**prompt, **settings)
    assert generated.shape == (2, prompt["input_ids"].shape[1] + 4)
    assert torch.equal(generated, expected)


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_sequence_classification_task_type_trains_like_the_model(family):
    assert_wrapped_like_the_model(*CLASSIFIERS[family](), "SEQ_CLS")
