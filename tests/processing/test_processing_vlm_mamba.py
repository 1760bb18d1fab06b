"""VLMambaProcessor: image-token expansion, prompt formats and chat template, training labels, decoding, the bundled
tokenizer (rebuilt byte for byte), save/load, and pipeline("image-text-to-text") against generate()."""

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoProcessor, PreTrainedTokenizerFast, pipeline
from transformers.models.auto.image_processing_auto import AutoImageProcessor  # 5.17's top-level one needs torchvision

from mamba_multimodal import (
    VLMambaConfig,
    VLMambaDataCollator,
    VLMambaForConditionalGeneration,
    VLMambaImageProcessor,
    VLMambaProcessor,
)
from mamba_multimodal.processing.processing_vlm_mamba import (
    BUNDLED_TOKENIZER_DIR,
    bundled_tokenizer,
    caption_prompt,
    vqa_prompt,
)

REPO = Path(__file__).resolve().parents[2]
QUESTION = "what color is the shape?"
IMAGE_SIZE, PATCH_SIZE = 16, 8  # 4 image tokens per image
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def tiny_config(tokenizer=None) -> VLMambaConfig:
    tokenizer = bundled_tokenizer() if tokenizer is None else tokenizer
    return VLMambaConfig(
        vision_config={"image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE, "hidden_size": 16, "num_hidden_layers": 1},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 2, "state_size": 4},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )


@pytest.fixture
def processor() -> VLMambaProcessor:
    return VLMambaProcessor.from_model_config(tiny_config())


@pytest.fixture
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8))


def user_turn(image, question=None) -> list[dict]:
    content = [{"type": "image", "image": image}]
    if question is not None:
        content.append({"type": "text", "text": question})
    return [{"role": "user", "content": content}]


# ------------------------------------------------------------------------------------------------ images
def test_image_processor_resizes_rescales_and_normalises_by_hand(image):
    pixel_values = VLMambaImageProcessor(size=IMAGE_SIZE)(image, return_tensors="pt").pixel_values
    resized = np.asarray(image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC), dtype=np.float32)
    expected = ((resized / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    assert pixel_values.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and pixel_values.dtype == torch.float32
    np.testing.assert_allclose(pixel_values[0].numpy(), expected, atol=1e-5)


def test_image_processor_takes_pil_numpy_tensors_and_lists_alike(image):
    processor = VLMambaImageProcessor(size=IMAGE_SIZE)
    array = np.array(image)
    reference = processor(image, return_tensors="np").pixel_values
    for images in (array, torch.from_numpy(array).permute(2, 0, 1), [image], [[image]], np.stack([array])):
        np.testing.assert_allclose(processor(images, return_tensors="np").pixel_values, reference, atol=1e-6)
    assert processor([image, array, image], return_tensors="pt").pixel_values.shape == (3, 3, 16, 16)


def test_image_processor_size_follows_the_model_config_and_round_trips(tmp_path):
    image_processor = VLMambaImageProcessor.from_model_config(tiny_config())
    assert image_processor.size == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    image_processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    settings = loaded.to_dict()  # the saved file also names the class for remote code (mamba_multimodal.hub)
    assert settings.pop("auto_map") == {"AutoImageProcessor": "image_processing_vlm_mamba.VLMambaImageProcessor"}
    assert type(loaded) is VLMambaImageProcessor and settings == image_processor.to_dict()


# ------------------------------------------------------------------------------------------------ text
def test_each_image_mark_expands_to_image_seq_length_tokens(processor, image):
    inputs = processor(images=[image, image], text=["<image>a <image>b"], return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 2 * IMAGE_TOKENS
    tokens = processor.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    assert tokens[:IMAGE_TOKENS] == ["<image>"] * IMAGE_TOKENS and tokens[IMAGE_TOKENS] != "<image>"


def test_text_without_mark_gets_its_image_prepended(processor, image):
    marked = processor(images=image, text=vqa_prompt(QUESTION), return_tensors="pt")
    unmarked = processor(images=image, text="Question: " + QUESTION + " Answer:", return_tensors="pt")
    assert torch.equal(marked["input_ids"], unmarked["input_ids"])
    mixed = processor(images=[image, image], text=[vqa_prompt(QUESTION), "Caption:"], padding=True)
    assert [ids.count(processor.image_token_id) for ids in mixed["input_ids"]] == [IMAGE_TOKENS, IMAGE_TOKENS]


def test_no_videos_or_audio_are_accepted_as_none_or_empty_and_real_ones_raise(processor, image):
    """lmms-eval's chat model passes `videos=[]` and `audios=[]` (transformers' deprecated spelling of `audio`)."""
    plain = processor(images=[image], text=[vqa_prompt(QUESTION)], padding=True, return_tensors="pt")
    as_lmms_eval = processor(
        text=[vqa_prompt(QUESTION)], images=[image], videos=[], audios=[], padding=True, return_tensors="pt"
    )
    assert as_lmms_eval.keys() == plain.keys()
    assert all(torch.equal(as_lmms_eval[key], plain[key]) for key in plain)
    processor(images=image, text=vqa_prompt(QUESTION), videos=None, audio=None)
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    for name in ("videos", "audio", "audios"):
        with pytest.raises(ValueError, match=f"^{name}: VLM-Mamba takes images and text only"):
            processor(images=image, text=vqa_prompt(QUESTION), **{name: [frames]})


@pytest.mark.parametrize(
    ("num_images", "text", "counts"),
    [
        (1, ["<image><image>two marks"], "holds 2 <image> mark(s) (per text: [2]) but 1 image(s)"),
        (3, ["<image>one mark"], "holds 1 <image> mark(s) (per text: [1]) but 3 image(s)"),
        (0, ["<image>one mark"], "holds 1 <image> mark(s) (per text: [1]) but 0 image(s)"),
        (3, ["no mark", "none"], "holds 0 <image> mark(s) (per text: [0, 0]) but 3 image(s)"),
    ],
)
def test_images_and_marks_that_do_not_match_raise_with_both_counts(processor, image, num_images, text, counts):
    images = [image] * num_images if num_images else None
    with pytest.raises(ValueError, match=counts.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        processor(images=images, text=text, padding=True)


def test_padding_is_on_the_left_by_default_with_an_attention_mask(processor, image):
    inputs = processor(images=[image, image], text=[vqa_prompt(QUESTION), caption_prompt()], padding=True)
    short_ids, short_mask = inputs["input_ids"][1], inputs["attention_mask"][1]
    pads = len(inputs["input_ids"][0]) - short_mask.count(1)
    assert pads > 0 and short_mask == [0] * pads + [1] * (len(short_mask) - pads)
    assert short_ids[:pads] == [processor.tokenizer.pad_token_id] * pads
    assert inputs["attention_mask"][0] == [1] * len(inputs["input_ids"][0])
    right = processor(images=[image, image], text=[vqa_prompt(QUESTION), caption_prompt()], padding=True,
                      padding_side="right")  # fmt: skip
    assert right["attention_mask"][1][-pads:] == [0] * pads


# ------------------------------------------------------------------------------------------------ prompts, chat
def test_prompt_formats():
    assert caption_prompt() == "<image>Caption:"
    assert vqa_prompt(QUESTION) == "<image>Question: what color is the shape? Answer:"


def test_chat_template_renders_exactly_the_vqa_prompt(processor, image):
    rendered = processor.apply_chat_template(user_turn(image, QUESTION), add_generation_prompt=True)
    assert rendered == vqa_prompt(QUESTION)
    assert processor.apply_chat_template(user_turn(image), add_generation_prompt=True) == caption_prompt()
    assert processor.apply_chat_template(user_turn(image, QUESTION)) == "<image>Question: " + QUESTION


def test_chat_template_renders_an_answer_as_the_training_target(processor, image):
    answer = {"role": "assistant", "content": [{"type": "text", "text": "blue"}]}
    conversation = [*user_turn(image, QUESTION), answer]
    assert processor.apply_chat_template(conversation) == vqa_prompt(QUESTION) + " blue</s>"


def test_tokenized_chat_equals_the_processor_on_the_vqa_prompt(processor, image):
    chat = processor.apply_chat_template(
        user_turn(image, QUESTION), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    direct = processor(images=image, text=vqa_prompt(QUESTION), return_tensors="pt")
    assert set(chat) == set(direct)
    for key in direct:
        assert torch.equal(chat[key], direct[key]), key


# ------------------------------------------------------------------------------------------------ training
def test_collator_labels_only_the_answer_and_eos(processor, image):
    examples = [
        {"image": image, "question": QUESTION, "answer": "blue"},
        {"image": image, "answer": "a red circle"},  # caption
    ]
    batch = VLMambaDataCollator(processor)(examples)
    tokenizer = processor.tokenizer
    assert set(batch) == {"input_ids", "attention_mask", "labels", "pixel_values"}
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    for row, (prompt, answer) in enumerate([(vqa_prompt(QUESTION), "blue"), (caption_prompt(), "a red circle")]):
        prompt_length = len(processor(images=image, text=prompt)["input_ids"][0])
        target = tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        end = prompt_length + len(target)
        labels, ids = batch["labels"][row].tolist(), batch["input_ids"][row].tolist()
        assert labels[:prompt_length] == [-100] * prompt_length  # image and prompt
        assert labels[prompt_length:end] == target == ids[prompt_length:end]  # answer + EOS
        assert labels[end:] == [-100] * (len(labels) - end)  # padding, on the right
        assert batch["attention_mask"][row].tolist() == [1] * end + [0] * (len(labels) - end)
        assert ids[end:] == [tokenizer.pad_token_id] * (len(ids) - end)
        assert tokenizer.decode(ids[:end]) == prompt.replace("<image>", "<image>" * IMAGE_TOKENS) + f" {answer}</s>"


def test_collator_reads_the_loaders_columns(processor, image):
    easy_vqa = {"image": image, "question": QUESTION, "answers": ["blue"], "answer_type": "other"}
    vqa_v2 = {"image": image, "question": QUESTION, "answers": ["teal"] * 10, "multiple_choice_answer": "blue"}
    explicit = {"image": image, "prompt": vqa_prompt(QUESTION), "answer": "blue"}
    batches = [VLMambaDataCollator(processor)([example]) for example in (easy_vqa, vqa_v2, explicit)]
    for batch in batches[1:]:
        assert torch.equal(batch["labels"], batches[0]["labels"])
    coco = VLMambaDataCollator(processor)([{"image": image, "caption": "a red circle"}])
    assert processor.batch_decode(coco["input_ids"]) == ["Caption: a red circle"]
    with pytest.raises(ValueError, match="needs a target"):
        VLMambaDataCollator(processor)([{"image": image, "question": QUESTION}])


def test_training_batch_gives_a_loss_on_the_model(processor, image):
    model = VLMambaForConditionalGeneration(tiny_config())
    batch = processor(images=[image], text=[vqa_prompt(QUESTION)], answers=["blue"])
    assert torch.isfinite(model(**batch).loss)


# ------------------------------------------------------------------------------------------------ decoding
def test_decode_drops_the_prompt_and_special_tokens(processor, image):
    inputs = processor(images=[image, image], text=[vqa_prompt(QUESTION), caption_prompt()], padding=True,
                       return_tensors="pt")  # fmt: skip
    answers = processor.tokenizer([" blue", " a red circle"], add_special_tokens=False, padding=True,
                                  padding_side="right", return_tensors="pt")["input_ids"]  # fmt: skip
    eos = torch.full((2, 1), processor.tokenizer.eos_token_id)
    generated = torch.cat([inputs["input_ids"], answers, eos], dim=1)
    # The answers without the space that separates them from their prompts (trained as " blue").
    assert processor.batch_decode(generated, input_ids=inputs["input_ids"]) == ["blue", "a red circle"]
    assert processor.decode(generated[0], input_ids=inputs["input_ids"]) == "blue"
    assert processor.batch_decode(generated)[0] == "Question: " + QUESTION + " Answer: blue"
    assert processor.post_process_image_text_to_text(generated, input_ids=inputs["input_ids"]) == [
        "blue",
        "a red circle",
    ]


# ------------------------------------------------------------------------------------------------ tokenizers
def test_bundled_tokenizer_is_small_and_has_the_special_tokens():
    tokenizer = bundled_tokenizer()
    assert isinstance(tokenizer, PreTrainedTokenizerFast) and len(tokenizer) < 512
    ids = tokenizer.convert_tokens_to_ids(["<pad>", "<s>", "</s>", "<unk>", "<image>"])
    assert ids == [0, 1, 2, 3, 4]
    text = "Question: is there a purple triangle? Answer: no"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


@pytest.mark.skipif(importlib.util.find_spec("easy_vqa") is None, reason="easy-vqa is not installed")
def test_shipped_tokenizer_equals_a_fresh_build(tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools" / "build_tokenizer.py"), str(tmp_path)], check=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == (BUNDLED_TOKENIZER_DIR / name).read_bytes(), name


def test_a_foreign_tokenizer_gets_the_image_token_and_a_warning(image, caplog):
    words = {"[UNK]": 0, "</s>": 1, "Question:": 2, "Answer:": 3, "Caption:": 4}
    backend = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="</s>")
    with caplog.at_level(logging.WARNING):
        processor = VLMambaProcessor(VLMambaImageProcessor(size=IMAGE_SIZE), tokenizer, image_seq_length=IMAGE_TOKENS)
    assert processor.image_token_id == 5 == len(tokenizer) - 1
    assert "resize the model's token embeddings" in caplog.text
    inputs = processor(images=[image, image], text=[caption_prompt(), "Caption: Caption:"], padding=True)
    assert [ids.count(5) for ids in inputs["input_ids"]] == [IMAGE_TOKENS, IMAGE_TOKENS]
    assert inputs["input_ids"][0][0] == tokenizer.eos_token_id  # the EOS token pads
    with pytest.raises(ValueError, match="image_token_id=5"):
        VLMambaProcessor.from_model_config(tiny_config(), tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------------ save / load
def test_save_and_auto_load_round_trip(processor, image, tmp_path):
    processor.save_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    assert {"processor_config.json", "tokenizer.json", "chat_template.jinja"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "processor_config.json").read_text())["image_seq_length"] == IMAGE_TOKENS
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is VLMambaProcessor and type(loaded.image_processor) is VLMambaImageProcessor
    assert loaded.chat_template == processor.chat_template and loaded.padding_side == "left"
    text = [vqa_prompt(QUESTION), caption_prompt()]
    expected = processor(images=[image, image], text=text, padding=True)
    got = loaded(images=[image, image], text=text, padding=True)
    assert expected["input_ids"] == got["input_ids"]
    np.testing.assert_array_equal(expected["pixel_values"], got["pixel_values"])


# ------------------------------------------------------------------------------------------------ pipeline
@pytest.fixture
def model() -> VLMambaForConditionalGeneration:
    return VLMambaForConditionalGeneration(tiny_config()).eval()


def generated_directly(model, processor, image, prompt) -> str:
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    return processor.batch_decode(generated, input_ids=inputs["input_ids"])[0]


def test_pipeline_with_a_chat_equals_generate(model, processor, image):
    generator = pipeline("image-text-to-text", model=model, processor=processor)
    out = generator(text=user_turn(image, QUESTION), max_new_tokens=6, return_full_text=False)
    assert out[0]["generated_text"] == generated_directly(model, processor, image, vqa_prompt(QUESTION))


def test_pipeline_with_images_and_text_equals_generate(model, processor, image):
    generator = pipeline("image-text-to-text", model=model, processor=processor)
    out = generator(images=image, text=caption_prompt(), max_new_tokens=6, return_full_text=False)
    assert out[0]["generated_text"] == generated_directly(model, processor, image, caption_prompt())


def test_pipeline_answers_a_batch_of_chats_as_one_chat_at_a_time(model, processor):
    """Chats of different lengths in batches of 3 (5.25's pipeline pads on the left): every answer is the one
    generate() gives that chat alone, unpadded."""
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)) for _ in range(4)]
    questions = [QUESTION, "what shape is it?", "is there a blue circle in the image?", "shape?"]
    generator = pipeline("image-text-to-text", model=model, processor=processor)
    chats = [user_turn(image, question) for image, question in zip(images, questions, strict=True)]
    batched = generator(text=chats, batch_size=3, max_new_tokens=6, return_full_text=False)
    pairs = zip(images, questions, strict=True)
    one_by_one = [generated_directly(model, processor, image, vqa_prompt(question)) for image, question in pairs]
    assert [out[0]["generated_text"] for out in batched] == one_by_one
    assert len(set(one_by_one)) > 1, "identical answers prove little"
