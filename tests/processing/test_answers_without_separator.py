"""Answers come back as 'triangle', not ' triangle': VLM-Mamba's answers are trained after a space (the bundled
byte-level BPE tokenizer's " triangle" is one token), and decoding the generated part alone, by the processor or
by `pipeline("image-text-to-text")`, drops that separator; a full text (prompt + answer) keeps it."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from mamba_multimodal import VLMambaConfig, VLMambaForConditionalGeneration, VLMambaProcessor
from mamba_multimodal.processing.processing_vlm_mamba import bundled_tokenizer, vqa_prompt

QUESTION = "what shape is it?"


@pytest.fixture(scope="module")
def parts():
    tokenizer = bundled_tokenizer()
    config = VLMambaConfig(
        vision_config={"image_size": 16, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 1},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 1, "state_size": 4},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    model = VLMambaForConditionalGeneration(config).eval()
    processor = VLMambaProcessor.from_model_config(config)
    (triangle,) = processor.tokenizer(" triangle", add_special_tokens=False)["input_ids"]  # one token, space and all
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8))
    generate = {"max_new_tokens": 1, "do_sample": False, "sequence_bias": {(triangle,): 1e4}}  # answers " triangle"
    return model, processor, image, generate


def chat(image):
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]


def by_batch_decode(model, processor, image, generate):
    inputs = processor(images=image, text=vqa_prompt(QUESTION), return_tensors="pt")
    return processor.batch_decode(model.generate(**inputs, **generate), input_ids=inputs["input_ids"])[0]


def by_decode(model, processor, image, generate):
    inputs = processor(images=image, text=vqa_prompt(QUESTION), return_tensors="pt")
    return processor.decode(model.generate(**inputs, **generate)[0], input_ids=inputs["input_ids"])


def by_pipeline_chat(model, processor, image, generate):
    answer = pipeline("image-text-to-text", model=model, processor=processor)
    return answer(text=chat(image), return_full_text=False, generate_kwargs=generate)[0]["generated_text"]


def by_pipeline_chat_message(model, processor, image, generate):
    answer = pipeline("image-text-to-text", model=model, processor=processor)
    messages = answer(text=chat(image), generate_kwargs=generate)[0]["generated_text"]
    assert [message["role"] for message in messages] == ["user", "assistant"]
    return messages[-1]["content"]


def by_pipeline_prompt(model, processor, image, generate):
    answer = pipeline("image-text-to-text", model=model, processor=processor)
    prompt = vqa_prompt(QUESTION)
    return answer(images=image, text=prompt, return_full_text=False, generate_kwargs=generate)[0]["generated_text"]


WAYS = [by_batch_decode, by_decode, by_pipeline_chat, by_pipeline_chat_message, by_pipeline_prompt]


@pytest.mark.parametrize("answer", WAYS, ids=lambda way: way.__name__)
def test_the_answer_comes_without_the_separating_space(parts, answer):
    assert answer(*parts) == "triangle"


def test_a_full_text_keeps_the_space_between_prompt_and_answer(parts):
    model, processor, image, generate = parts
    answer = pipeline("image-text-to-text", model=model, processor=processor)
    prompt = vqa_prompt(QUESTION)
    assert answer(images=image, text=prompt, generate_kwargs=generate)[0]["generated_text"] == prompt + " triangle"
