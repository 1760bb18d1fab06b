"""The easy-VQA recipe: the VLM it builds for each tower, and the training set that mixes descriptions in."""

import datasets
import pytest
import torch

from mamba_multimodal import VLMambaDataCollator, VLMambaForConditionalGeneration, VLMambaForImageTextClassification
from mamba_multimodal.processing.processing_vlm_mamba import caption_prompt, vqa_prompt
from mamba_multimodal.training.recipes import (
    EASY_VQA_VISION_TOWERS,
    easy_vqa_vlm,
    easy_vqa_vlm_config,
    vqa_training_set,
)

IMAGE_TOKENS = {"mambavision": 4, "vision_mamba": 16, "patch": 16, "tiny": 16}


@pytest.mark.parametrize("vision", sorted(EASY_VQA_VISION_TOWERS))
def test_each_tower_builds_a_vlm_over_the_bundled_tokenizer(vision):
    model, processor = easy_vqa_vlm(vision)
    config = model.config
    assert config.vision_mode == {"tiny": "vision_mamba"}.get(vision, vision)
    assert config.image_seq_length == IMAGE_TOKENS[vision] == processor.image_seq_length
    assert config.text_config.vocab_size == len(processor.tokenizer)
    assert config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<image>")
    assert model.lm_head.weight is model.model.language_model.embeddings.weight  # tied
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    assert model.generation_config.bos_token_id is None


def test_classifier_and_overrides_pass_through():
    model, _ = easy_vqa_vlm("tiny", VLMambaForImageTextClassification, num_labels=13)
    assert isinstance(model, VLMambaForImageTextClassification) and model.config.num_labels == 13
    with pytest.raises(ValueError, match="vision must be one of"):
        easy_vqa_vlm_config("resnet")


def _split(rows: dict, image_path: str) -> datasets.Dataset:
    rows = {**rows, "image": [image_path] * len(next(iter(rows.values())))}
    return datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())


def test_the_training_set_holds_every_question_and_each_description_repeated(tmp_path):
    import PIL.Image

    image_path = str(tmp_path / "red.png")
    PIL.Image.new("RGB", (64, 64), "red").save(image_path)
    questions = _split({"question": ["what color is it?", "is it a circle?"], "multiple_choice_answer": ["red", "no"]},
                       image_path)  # fmt: skip
    descriptions = _split({"caption": ["a red rectangle"]}, image_path)
    rows = vqa_training_set(questions, descriptions, description_repeats=3)
    pairs = sorted(zip(rows["prompt"], rows["answer"], strict=True))
    assert pairs == sorted([(vqa_prompt("what color is it?"), "red"), (vqa_prompt("is it a circle?"), "no")]
                           + [(caption_prompt(), "a red rectangle")] * 3)  # fmt: skip
    assert vqa_training_set(questions, descriptions, description_repeats=0).num_rows == 2

    model, processor = easy_vqa_vlm("tiny")
    batch = VLMambaDataCollator(processor)([rows[i] for i in range(rows.num_rows)])
    assert batch["pixel_values"].shape == (5, 3, 32, 32)
    answers = [processor.tokenizer.decode(ids[labels != -100]) for ids, labels in
               zip(batch["input_ids"], batch["labels"], strict=True)]  # fmt: skip
    assert sorted(answer.replace("</s>", "").strip() for answer in answers) == sorted(
        ["red", "no", "a red rectangle", "a red rectangle", "a red rectangle"]
    )
    assert torch.isfinite(model(**batch).loss)
    assert isinstance(model, VLMambaForConditionalGeneration)
