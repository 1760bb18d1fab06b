"""Multi-turn chats: LLaVA rows → chat messages, and `VLMambaDataCollator` on LLaVA rows against token and label
layouts built by hand from the tokenizer's pieces (single and multi-turn, text-only, system turn, other tokenizers),
the generation prompt of every round as a prefix of the training sequence, and transformers' own assistant masks."""

import jinja2
import numpy as np
import pytest
import torch
from PIL import Image
from test_processing_vlm_mamba import IMAGE_SIZE, IMAGE_TOKENS, QUESTION, tiny_config
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast
from transformers.processing_utils import ProcessorMixin

from mamba_multimodal import (
    VLMambaDataCollator,
    VLMambaForConditionalGeneration,
    VLMambaImageProcessor,
    VLMambaProcessor,
)
from mamba_multimodal.processing.chat_vlm_mamba import llava_messages
from mamba_multimodal.processing.processing_vlm_mamba import vqa_prompt

IMAGE = {"type": "image"}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


@pytest.fixture
def processor() -> VLMambaProcessor:
    return VLMambaProcessor.from_model_config(tiny_config())


@pytest.fixture
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8))


def turns(*values: str, first: str = "human") -> list[dict]:
    """LLaVA turns alternating from `first`."""
    speakers = ("human", "gpt") if first == "human" else ("gpt", "human")
    return [{"from": speakers[index % 2], "value": value} for index, value in enumerate(values)]


def layout(tokenizer, *parts: tuple[str, bool], image_tokens: int = 0) -> tuple[list[int], list[int]]:
    """Expected (input_ids, labels): `image_tokens` image tokens, then each (text, labelled) part tokenized alone;
    "</s>" stands for the EOS token."""
    ids = [tokenizer.convert_tokens_to_ids("<image>")] * image_tokens
    labels = [-100] * image_tokens
    for part, labelled in parts:
        piece = [tokenizer.eos_token_id] if part == "</s>" else tokenizer(part, add_special_tokens=False).input_ids
        ids += piece
        labels += piece if labelled else [-100] * len(piece)
    return ids, labels


def unpadded(batch, row: int) -> tuple[list[int], list[int]]:
    length = int(batch["attention_mask"][row].sum())
    return batch["input_ids"][row, :length].tolist(), batch["labels"][row, :length].tolist()


# ------------------------------------------------------------------------------------------------ LLaVA → messages
def test_llava_turns_become_chat_messages_with_the_image_first():
    alignment = turns("Render a clear and concise summary of the photo.\n<image>", "a red circle")
    assert llava_messages(alignment, has_image=True) == [
        {"role": "user", "content": [IMAGE, text("Render a clear and concise summary of the photo.")]},
        {"role": "assistant", "content": [text("a red circle")]},
    ]
    multi = turns("<image>\nWhat color?", "Blue.", "And the shape?", "A circle.")
    assert [m["role"] for m in llava_messages(multi, True)] == ["user", "assistant", "user", "assistant"]
    assert llava_messages(multi, True)[0]["content"] == [IMAGE, text("What color?")]
    assert llava_messages(multi, True)[2]["content"] == [text("And the shape?")]
    assert llava_messages(turns("hi", "hello"), has_image=False)[0]["content"] == [text("hi")]  # text-only
    assert llava_messages(turns("<image>", "a caption"), True)[0]["content"] == [IMAGE]  # the caption prompt
    assert llava_messages(turns("hi", "hello"), True)[0]["content"] == [IMAGE, text("hi")]  # no mark: first turn
    system = [{"from": "system", "value": "Be brief."}, *turns("hi", "hello")]
    assert [m["role"] for m in llava_messages(system, False)] == ["system", "user", "assistant"]


def test_a_conversation_opening_with_gpt_loses_that_turn_as_in_llava():
    messages = llava_messages(turns("Hello! How can I help?", "hi", "hello", first="gpt"), has_image=False)
    assert messages == [{"role": "user", "content": [text("hi")]}, {"role": "assistant", "content": [text("hello")]}]


@pytest.mark.parametrize(
    ("conversations", "has_image", "message"),
    [
        ([{"from": "bard", "value": "x"}], False, r"from must be one of human, gpt, system, got \['bard'\]"),
        (turns("<image>\nhi", "hello"), False, "has an <image> mark but no image"),
        (turns("<image><image>\nhi", "hello"), True, r"one <image> mark, in a human turn, .* turns \[0\] hold 2"),
        (turns("hi", "<image>"), True, r"one <image> mark, in a human turn, .* turns \[1\] hold 1"),
    ],
)
def test_llava_rows_outside_the_format_raise_naming_the_row(conversations, has_image, message):
    with pytest.raises(ValueError, match="row 'x7'.*" + message):
        llava_messages(conversations, has_image, row_id="x7")


# ------------------------------------------------------------------------------------------------ layouts by hand
def test_single_turn_layout_token_by_token(processor, image):
    batch = VLMambaDataCollator(processor)([{"id": "1", "image": image, "conversations": turns("<image>\nwhat is it?",
                                                                                                "blue")}])  # fmt: skip
    tokenizer = processor.tokenizer
    pieces = ["Question", ":", "Ġwhat", "Ġis", "Ġi", "t", "?", "ĠAnswer", ":", "Ġblue", "</s>"]
    ids = [processor.image_token_id] * IMAGE_TOKENS + tokenizer.convert_tokens_to_ids(pieces)
    labels = [-100] * (IMAGE_TOKENS + 9) + tokenizer.convert_tokens_to_ids(["Ġblue", "</s>"])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "pixel_values"}
    assert batch["input_ids"].tolist() == [ids] and batch["labels"].tolist() == [labels]
    assert batch["attention_mask"].tolist() == [[1] * len(ids)]
    assert batch["pixel_values"].shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)


def test_multi_turn_labels_every_assistant_turn_and_its_eos(processor, image):
    conversation = turns("<image>\nWhat color is it?", "Blue.", "And the shape?", "A circle, I think.")
    batch = VLMambaDataCollator(processor)([{"id": "1", "image": image, "conversations": conversation}])
    expected = layout(
        processor.tokenizer,
        ("Question: What color is it?", False), (" Answer:", False), (" Blue.", True), ("</s>", True),
        ("Question: And the shape?", False), (" Answer:", False), (" A circle, I think.", True), ("</s>", True),
        image_tokens=IMAGE_TOKENS,
    )  # fmt: skip
    assert unpadded(batch, 0) == expected


def test_text_only_rows_have_no_image_tokens_and_no_pixel_values(processor, image):
    text_only = {"id": "t", "conversations": turns("How are you?", "Fine, thanks.")}
    with_image = {"id": "i", "image": image, "conversations": turns("<image>\nWhat color is the shape here?", "Blue.")}
    expected_text = layout(processor.tokenizer, ("Question: How are you?", False), (" Answer:", False),
                           (" Fine, thanks.", True), ("</s>", True))  # fmt: skip
    alone = VLMambaDataCollator(processor)([text_only])
    assert "pixel_values" not in alone and unpadded(alone, 0) == expected_text
    mixed = VLMambaDataCollator(processor)([text_only, {**with_image}, {**text_only, "image": None}])
    assert mixed["pixel_values"].shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)  # the one image, in batch order
    assert unpadded(mixed, 0) == expected_text == unpadded(mixed, 2)
    image_row = layout(processor.tokenizer, ("Question: What color is the shape here?", False), (" Answer:", False),
                       (" Blue.", True), ("</s>", True), image_tokens=IMAGE_TOKENS)  # fmt: skip
    assert unpadded(mixed, 1) == image_row
    pads = mixed["input_ids"].shape[1] - len(expected_text[0])
    assert pads > 0
    for row in (0, 2):  # right padding: pad ids, mask 0, labels -100
        assert mixed["input_ids"][row, -pads:].tolist() == [processor.tokenizer.pad_token_id] * pads
        assert mixed["attention_mask"][row, -pads:].tolist() == [0] * pads
        assert mixed["labels"][row, -pads:].tolist() == [-100] * pads


def test_a_mixed_batch_gives_each_row_what_it_gives_alone():
    """The model fills the image tokens with pixel_values in order: a text-only row before an image row changes
    nothing (right padding: each row's own positions compare)."""
    processor = VLMambaProcessor.from_model_config(tiny_config())
    model = VLMambaForConditionalGeneration(tiny_config()).eval()
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)) for _ in range(2)]
    rows = [
        {"id": "a", "conversations": turns("How are you?", "Fine.")},
        {"id": "b", "image": images[0], "conversations": turns("<image>\nWhat color?", "Blue.")},
        {"id": "c", "image": images[1], "conversations": turns("<image>", "A red circle.")},
    ]
    collator = VLMambaDataCollator(processor)
    with torch.no_grad():
        mixed = model(**collator(rows)).logits
        for row, example in enumerate(rows):
            alone = model(**collator([example])).logits[0]
            torch.testing.assert_close(mixed[row, : alone.shape[0]], alone, atol=1e-5, rtol=1e-5)
        assert torch.isfinite(model(**collator(rows)).loss)


def test_a_system_turn_renders_first_unlabelled(processor, image):
    conversation = [{"from": "system", "value": "Answer briefly."}, *turns("<image>\nWhat color?", "Blue.")]
    batch = VLMambaDataCollator(processor)([{"id": "s", "image": image, "conversations": conversation}])
    ids, labels = layout(processor.tokenizer, ("Answer briefly.\n", False), ("Question: What color?", False),
                         (" Answer:", False), (" Blue.", True), ("</s>", True))  # fmt: skip
    eos_at = len(processor.tokenizer("Answer briefly.\n").input_ids)
    expected_ids = ids[:eos_at] + [processor.image_token_id] * IMAGE_TOKENS + ids[eos_at:]
    assert unpadded(batch, 0) == (expected_ids, labels[:eos_at] + [-100] * IMAGE_TOKENS + labels[eos_at:])
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": [IMAGE, text("hi")]}]
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert rendered == "Answer briefly.\n" + vqa_prompt("hi")


def test_a_system_turn_after_the_first_is_refused_in_one_line(processor):
    messages = [{"role": "user", "content": "hi"}, {"role": "system", "content": "Be brief."}]
    with pytest.raises(jinja2.TemplateError) as error:
        processor.apply_chat_template(messages)
    assert str(error.value) == (
        "VLM-Mamba chats have user and assistant turns after an optional first system turn, got system as turn 2"
    )


# ------------------------------------------------------------------------------------------------ template == training
CONVERSATION = turns("<image>\nWhat color is it?", "Blue.", "And the shape?", "A circle.", "Is it big?", "No.")


def messages_of(conversation, image) -> list[dict]:
    messages = llava_messages(conversation, has_image=True)
    messages[0]["content"][0] = {"type": "image", "image": image}
    return messages


@pytest.mark.parametrize("tokenizer_kind", ["bundled", "byte-level-trimmed", "byte-level", "word-level-bos"])
def test_each_rounds_generation_prompt_is_a_prefix_followed_by_its_labels(tokenizer_kind, image):
    """For round k: the prompt the template renders for generation (rounds < k, then the k-th question, tokenized by
    the processor as at inference) is a prefix of the training sequence, and the tokens after it up to the k-th
    EOS are exactly the labelled ones there."""
    processor = processor_with(tokenizer_kind)
    input_ids, labels = unpadded(VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION}]), 0)
    messages = messages_of(CONVERSATION, image)
    eos = processor.tokenizer.eos_token_id
    answers = [position for position, token in enumerate(input_ids) if token == eos and labels[position] == eos]
    assert len(answers) == 3
    start = 0
    for round_index, end in enumerate(answers):
        prompt = processor.apply_chat_template(messages[: 2 * round_index + 1], add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"][0]  # fmt: skip
        assert input_ids[: len(prompt)] == list(prompt), round_index
        assert labels[start : len(prompt)] == [-100] * (len(prompt) - start)
        assert labels[len(prompt) : end + 1] == input_ids[len(prompt) : end + 1]
        answer = processor.tokenizer.decode(input_ids[len(prompt) : end])
        words = CONVERSATION[2 * round_index + 1]["value"]
        assert answer.replace(" ", "") == words.replace(" ", ""), round_index  # word-level: "Blue ." for "Blue."
        start = end + 1


def test_the_generation_markers_give_transformers_assistant_masks_equal_to_the_labels(processor, image):
    tokenizer = processor.tokenizer
    messages = llava_messages(CONVERSATION, has_image=True)
    masks = tokenizer.apply_chat_template(messages, chat_template=processor.chat_template, tokenize=True,
                                          return_dict=True, return_assistant_tokens_mask=True)  # fmt: skip
    _, labels = unpadded(VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION}]), 0)
    expanded = [flag for token, flag in zip(masks["input_ids"], masks["assistant_masks"], strict=True)
                for _ in range(IMAGE_TOKENS if token == processor.image_token_id else 1)]  # fmt: skip
    assert expanded == [int(label != -100) for label in labels]


@pytest.mark.skipif(
    not hasattr(ProcessorMixin, "_adjust_assistant_masks_indices"),
    reason="this transformers does not shift assistant masks past expanded image tokens",
)
def test_the_processors_own_assistant_masks_equal_the_labels(processor, image):
    out = processor.apply_chat_template(messages_of(CONVERSATION, image), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)  # fmt: skip
    input_ids, labels = unpadded(VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION}]), 0)
    assert list(out["input_ids"][0]) == input_ids
    assert list(out["assistant_masks"][0]) == [int(label != -100) for label in labels]


def test_one_round_equals_the_prompt_answer_collator(processor, image):
    chat = VLMambaDataCollator(processor)([{"image": image, "conversations": turns("<image>\n" + QUESTION, "blue")}])
    single = VLMambaDataCollator(processor)([{"image": image, "question": QUESTION, "answer": "blue"}])
    for key in ("input_ids", "attention_mask", "labels", "pixel_values"):
        assert torch.equal(chat[key], single[key]), key


# ------------------------------------------------------------------------------------------------ other tokenizers
def processor_with(kind: str) -> VLMambaProcessor:
    """The bundled tokenizer, a GPT-NeoX-like byte-level BPE (<|endoftext|> as BOS/EOS/UNK, no pad token, offsets
    trimmed or not) or a word-level tokenizer whose post-processor adds a BOS."""
    image_processor = VLMambaImageProcessor(size=IMAGE_SIZE)
    if kind == "bundled":
        return VLMambaProcessor.from_model_config(tiny_config())
    corpus = [f"Question: {t['value']} Answer: {t['value']}" for t in CONVERSATION] * 3
    if kind.startswith("byte-level"):
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.ByteLevel(trim_offsets=kind.endswith("trimmed"))
        backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
        special = "<|endoftext|>"
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=special, eos_token=special,
                                            unk_token=special)  # fmt: skip
    else:
        split = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
        words = sorted({word for line in corpus for word, _ in split.pre_tokenize_str(line)})
        backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(["[UNK]", "<s>", "</s>", *words])}, "[UNK]"))
        backend.pre_tokenizer = split
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token="<s>",
                                            eos_token="</s>")  # fmt: skip
    assert tokenizer.pad_token is None
    return VLMambaProcessor(image_processor, tokenizer, image_seq_length=IMAGE_TOKENS)


def test_a_word_level_tokenizer_with_bos_keeps_the_bos_unlabelled(image):
    processor = processor_with("word-level-bos")
    tokenizer = processor.tokenizer
    input_ids, labels = unpadded(VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION[:2]}]),
                                 0)  # fmt: skip
    words = ["Question", ":", "What", "color", "is", "it", "?", "Answer", ":"]
    prompt = [
        tokenizer.bos_token_id,
        *[processor.image_token_id] * IMAGE_TOKENS,
        *tokenizer.convert_tokens_to_ids(words),
    ]
    answer = [*tokenizer.convert_tokens_to_ids(["Blue", "."]), tokenizer.eos_token_id]
    assert input_ids == prompt + answer and labels == [-100] * len(prompt) + answer


def test_a_byte_level_tokenizer_without_pad_pads_with_eos_and_labels_lone_spaces(image):
    processor = processor_with("byte-level-trimmed")
    tokenizer = processor.tokenizer
    rows = [{"image": image, "conversations": turns("<image>", "zq")}, {"conversations": CONVERSATION[2:4]}]
    batch = VLMambaDataCollator(processor)(rows)
    input_ids, labels = unpadded(batch, 0)
    answer = [*tokenizer(" zq", add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    assert tokenizer.convert_ids_to_tokens(answer[:1]) == ["Ġ"]  # " zq": unseen, so the space is a token alone
    assert labels[-len(answer) :] == answer == input_ids[-len(answer) :]
    assert labels[: -len(answer)] == [-100] * (len(labels) - len(answer))
    assert batch["input_ids"][0, len(input_ids) :].eq(tokenizer.eos_token_id).all()  # EOS pads


# ------------------------------------------------------------------------------------------------ limits
def test_max_length_cuts_on_the_right_but_never_the_image(processor, image):
    row = {"id": "m", "image": image, "conversations": CONVERSATION}
    full_ids, full_labels = unpadded(VLMambaDataCollator(processor)([row]), 0)
    cut = VLMambaDataCollator(processor, max_length=IMAGE_TOKENS + 5)([row])
    assert unpadded(cut, 0) == (full_ids[: IMAGE_TOKENS + 5], full_labels[: IMAGE_TOKENS + 5])
    with pytest.raises(ValueError, match="cuts the image tokens of row 'm'"):
        VLMambaDataCollator(processor, max_length=IMAGE_TOKENS - 1)([row])


def test_a_batch_mixing_llava_rows_and_prompt_rows_is_refused(processor, image):
    with pytest.raises(ValueError, match="mixes LLaVA rows"):
        VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION}, {"image": image,
                                                                                         "caption": "x"}])  # fmt: skip


# ------------------------------------------------------------------------------------------------ earlier folders
def test_a_folder_saved_with_the_earlier_template_trains_with_the_current_one(image):
    """The shipped demo base was saved with the earlier default (its generation span held the cue): it loads with the
    current template, so its LLaVA batches label the answers only."""
    from mamba_multimodal.processing.chat_vlm_mamba import EARLIER_CHAT_TEMPLATE
    from mamba_multimodal.processing.processing_vlm_mamba import CHAT_TEMPLATE
    from mamba_multimodal.training.demo import base_model_path

    assert (base_model_path() / "chat_template.jinja").read_text() == EARLIER_CHAT_TEMPLATE
    processor = VLMambaProcessor.from_pretrained(base_model_path())
    assert processor.chat_template == CHAT_TEMPLATE
    _, labels = unpadded(VLMambaDataCollator(processor)([{"image": image, "conversations": CONVERSATION[:2]}]), 0)
    answer = [*processor.tokenizer(" Blue.", add_special_tokens=False).input_ids, processor.tokenizer.eos_token_id]
    assert [label for label in labels if label != -100] == answer
