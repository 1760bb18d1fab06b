"""VLM-Mamba's processor: images → `pixel_values`, text → `input_ids` holding `image_seq_length` image tokens per
image, before the text they belong to (the image comes first in the causal scan).

Prompt formats (what the model is trained on; the chat template renders exactly these):
    caption_prompt()        "<image>Caption:"
    vqa_prompt(question)    "<image>Question: {question} Answer:"
A target follows its prompt after one space and ends with EOS: "<image>Question: what shape is it? Answer: circle</s>".

Tokenizer: any Hugging Face tokenizer (`<image>` is added to it when missing: resize the model's embeddings then), or
the small byte-level BPE that ships with the package (`bundled_tokenizer()`, built by `tools/build_tokenizer.py` from
easy-VQA's questions and answers). Glossary: P image tokens per image (`image_seq_length`).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers import AutoConfig, AutoTokenizer, PreTrainedConfig
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import make_flat_list_of_images
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from ..configuration.configuration_vlm_mamba import VLMambaConfig
from ..hub_mixin import HubProcessorMixin
from .chat_vlm_mamba import EARLIER_CHAT_TEMPLATE
from .image_processing_vlm_mamba import VLMambaImageProcessor

logger = logging.get_logger(__name__)

IMAGE_TOKEN = "<image>"
CAPTION_PROMPT = IMAGE_TOKEN + "Caption:"
VQA_PROMPT = IMAGE_TOKEN + "Question: {question} Answer:"
ANSWER_SEPARATOR = " "  # between a prompt and its answer in training batches: the answer's first token is " word"
BUNDLED_TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizer"

# A user turn renders its images (as <image> marks) then "Question: " + its text, if any; the generation prompt (and
# the start of an assistant turn) is " Answer:" after a question, "Caption:" after an image alone; an assistant turn
# is that cue, a space, its text and EOS. One user turn with one image and a question, add_generation_prompt=True:
# exactly vqa_prompt(question); an image and no text: exactly caption_prompt(). Turns follow one another unseparated
# (multi-turn: "...Answer: blue</s>Question: ..."); a system turn, first only, renders as its text and a newline.
# The {% generation %} span is " " + the assistant's text + EOS, not the cue: the generation prompt ends with the cue,
# so what the model is trained to produce (the labels, `return_assistant_tokens_mask`) is what follows a prompt.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(cue='Caption:') -%}"
    "{%- for message in messages -%}"
    "{%- set content = message['content'] -%}"
    "{%- if content is string -%}{%- set content = [{'type': 'text', 'text': content}] -%}{%- endif -%}"
    "{%- set texts = content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- for item in content if item['type'] == 'image' -%}<image>{%- endfor -%}"
    "{%- if texts -%}Question: {{ texts }}{%- set ns.cue = ' Answer:' -%}"
    "{%- else -%}{%- set ns.cue = 'Caption:' -%}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ ns.cue }}{% generation %} {{ texts }}{{ eos_token if eos_token is defined else '' }}{% endgeneration %}"
    "{%- elif message['role'] == 'system' and loop.first -%}"
    "{{ texts ~ '\\n' }}"
    "{%- else -%}"
    "{{ raise_exception('VLM-Mamba chats have user and assistant turns after an optional first system turn, got ' "
    "+ message['role'] + ' as turn ' + loop.index | string) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ ns.cue }}{%- endif -%}"
)


def caption_prompt() -> str:
    """The captioning prompt: "<image>Caption:" (the caption follows after a space)."""
    return CAPTION_PROMPT


def vqa_prompt(question: str) -> str:
    """The VQA prompt: "<image>Question: {question} Answer:" (the answer follows after a space)."""
    return VQA_PROMPT.format(question=question)


def bundled_tokenizer():
    """The byte-level BPE tokenizer that ships with the package (365 tokens: <pad> 0, <s> 1, </s> 2, <unk> 3,
    <image> 4), trained on easy-VQA's questions and answers; any text encodes, decoding gives it back."""
    return AutoTokenizer.from_pretrained(str(BUNDLED_TOKENIZER_DIR))


class VLMambaProcessor(HubProcessorMixin, ProcessorMixin):
    r"""Image processor + tokenizer for VLM-Mamba.

    `processor(images=..., text=...)` expands every `<image>` mark in the text into `image_seq_length` image tokens
    (a text without a mark gets its image prepended), pads on the left (generation),
    and returns `input_ids`, `attention_mask` and `pixel_values`. With `answers=` it builds a training batch instead:
    right padding, each answer (after a space) and EOS appended, `labels` = -100 on image, prompt and padding
    positions. `batch_decode(generated, input_ids=prompt_ids)` drops the prompt and the special tokens.

    Args:
        image_processor (`VLMambaImageProcessor`, optional): defaults to a 64×64 one.
        tokenizer (any HF tokenizer, optional): defaults to `bundled_tokenizer()`. `<image>` is added to it as a
            special token when missing (the model's embeddings must then be resized to `len(tokenizer)`); a missing
            pad token becomes the EOS token.
        chat_template (`str`, optional): defaults to `CHAT_TEMPLATE` (the VQA and caption prompts, multi-turn); the
            earlier releases' default (`chat_vlm_mamba.EARLIER_CHAT_TEMPLATE`) is read as `CHAT_TEMPLATE`.
        image_seq_length (`int`, defaults to 64): image tokens per image, `VLMambaConfig.image_seq_length`.
        image_token (`str`, defaults to "<image>"): the image mark (the tokenizer's `image_token` if it has one).
        padding_side (`str`, defaults to "left"): padding of `processor(...)` without answers.
    """

    family_name = "vlm_mamba"  # the registry family whose remote-code bundle holds this class

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template: str | None = None,
        image_seq_length: int = 64,
        image_token: str = IMAGE_TOKEN,
        padding_side: str = "left",
        **kwargs,
    ):
        if not isinstance(image_seq_length, int) or isinstance(image_seq_length, bool) or image_seq_length <= 0:
            raise ValueError(f"image_seq_length must be a positive int, got {image_seq_length!r}")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        image_processor = VLMambaImageProcessor() if image_processor is None else image_processor
        tokenizer = bundled_tokenizer() if tokenizer is None else tokenizer
        self.image_seq_length = image_seq_length
        self.padding_side = padding_side
        self.image_token = getattr(tokenizer, "image_token", None) or image_token
        self.image_token_id = _ensure_token(tokenizer, self.image_token)
        _ensure_pad_token(tokenizer)
        chat_template = CHAT_TEMPLATE if chat_template in (None, EARLIER_CHAT_TEMPLATE) else chat_template
        super().__init__(image_processor, tokenizer, chat_template=chat_template, **kwargs)

    @classmethod
    def from_model_config(cls, config: VLMambaConfig, tokenizer=None, **kwargs) -> VLMambaProcessor:
        """The processor for a model: the tower's image size, `image_seq_length`, and `tokenizer` (default: the
        bundled one), checked against `config.image_token_id` and the LM's vocabulary size."""
        processor = cls(
            image_processor=VLMambaImageProcessor.from_model_config(config),
            tokenizer=tokenizer,
            image_seq_length=config.image_seq_length,
            **kwargs,
        )
        vocab_size, size = config.text_config.vocab_size, len(processor.tokenizer)
        if processor.image_token_id != config.image_token_id or size > vocab_size:
            raise ValueError(
                f"the tokenizer does not fit the config: {processor.image_token} is id {processor.image_token_id} "
                f"and the tokenizer has {size} tokens, but config.image_token_id is {config.image_token_id} and "
                f"text_config.vocab_size is {vocab_size}; build the config with image_token_id="
                f"{processor.image_token_id} and vocab_size >= {size} (or resize the model's token embeddings)"
            )
        return processor

    @classmethod
    def from_pretrained_parts(cls, vision, language, **kwargs) -> VLMambaProcessor:
        """The processor of a VLM built from two pretrained parts (`VLMambaForConditionalGeneration.
        from_pretrained_parts(vision, language, processor=this)`): the language model's tokenizer, with `<image>`
        added when missing and EOS as the pad token when it has none (`state-spaces/mamba-*-hf`: `<|endoftext|>`, id 0,
        the pad id of their config.json), and an image processor at the tower's image size and its mean and std,
        each image expanding to the tower's output positions (MambaVision-T at 224 px: 7 × 7 = 49 tokens).

        Args:
            vision: the vision model, its config, or a path / Hub id to it.
            language: a tokenizer, or the path / Hub id of the language model's folder (its tokenizer files).
            kwargs: `VLMambaProcessor` arguments (`chat_template`, `padding_side`, ...).
        """
        vision_config = vision if isinstance(vision, PreTrainedConfig) else getattr(vision, "config", None)
        vision_config = vision_config or AutoConfig.from_pretrained(vision)
        tokenizer = AutoTokenizer.from_pretrained(language) if isinstance(language, (str, PathLike)) else language
        layout = VLMambaConfig(vision_config=vision_config.to_dict())  # what the VLM will see of the tower
        image_processor = VLMambaImageProcessor.from_model_config(layout)
        return cls(image_processor, tokenizer, image_seq_length=layout.image_seq_length, **kwargs)

    # ----------------------------------------------------------------------------------------- inputs
    def __call__(self, images=None, text=None, answers=None, videos=None, audio=None, **kwargs) -> BatchFeature:
        """images: one image or a list (nested per text allowed); text: a string or a list, with `<image>` marks;
        answers: a string or list (one per text) for a training batch. `videos` and `audio` (or its deprecated
        spelling `audios`), ProcessorMixin's other inputs, may be given as None or empty (lmms-eval passes `[]`);
        any video or audio raises. Other keyword arguments go to the image processor and the tokenizer
        (`return_tensors`, `padding`, `padding_side`, ...)."""
        for name, value in (("videos", videos), ("audio", audio), ("audios", kwargs.pop("audios", None))):
            _refuse_media(name, value)
        if answers is not None:
            return self._training_batch(images, text, answers, **kwargs)
        if "padding_side" not in kwargs and "padding_side" not in kwargs.get("text_kwargs", {}):
            kwargs["padding_side"] = self.padding_side
        return super().__call__(images=images, text=text, **kwargs)

    def prepare_inputs_layout(self, images=None, text=None, videos=None, audio=None, **kwargs):
        """The base class's layout (text as a list), then `<image>` marks prepended to the texts that have none:
        as many as their entry of a nested image list, or one each when that makes the marks match the images."""
        images, text, videos, audio = super().prepare_inputs_layout(
            images=images, text=text, videos=videos, audio=audio, **kwargs
        )
        if images is not None and text is not None:
            counts = _marks_to_prepend(images, [sample.count(self.image_token) for sample in text])
            text = [self.image_token * count + sample for count, sample in zip(counts, text, strict=True)]
        return images, text, videos, audio

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        """As many images as `<image>` marks in the texts, else ValueError with both counts."""
        if text is not None and isinstance(text, list) and all(isinstance(sample, str) for sample in text):
            marks = [sample.count(self.image_token) for sample in text]
            num_images = 0 if images is None else len(make_flat_list_of_images(images))
            if sum(marks) != num_images:
                raise ValueError(
                    f"the text holds {sum(marks)} {self.image_token} mark(s) (per text: {marks}) but {num_images} "
                    f"image(s) were given: give one image per mark, in order (a text without marks gets one image "
                    "prepended)"
                )
        super().validate_inputs(images=images, text=text, videos=videos, audio=audio, **kwargs)

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        """Every image becomes `image_seq_length` image tokens."""
        return self.image_token * self.image_seq_length

    def _training_batch(self, images, text, answers, return_tensors="pt", **kwargs) -> BatchFeature:
        """Prompts (tokenized alone, as at generation) + " " + answer + EOS, right-padded; labels on answer + EOS."""
        if self.tokenizer.eos_token_id is None:
            raise ValueError("a training batch ends each answer with EOS, but the tokenizer has no eos_token")
        text = [text] if isinstance(text, str) else list(text)
        answers = [answers] if isinstance(answers, str) else list(answers)
        if len(answers) != len(text):
            raise ValueError(f"give one answer per text: got {len(text)} text(s) and {len(answers)} answer(s)")
        kwargs = {**kwargs, "padding": False, "padding_side": "right"}
        prompts = super().__call__(images=images, text=text, return_tensors=None, **kwargs)
        targets = self.tokenizer([ANSWER_SEPARATOR + answer for answer in answers], add_special_tokens=False)
        targets = targets["input_ids"]
        eos = self.tokenizer.eos_token_id
        sequences = [
            list(prompt) + target + [eos] for prompt, target in zip(prompts["input_ids"], targets, strict=True)
        ]
        length = max(map(len, sequences))
        pad = self.tokenizer.pad_token_id
        data = {
            "input_ids": [ids + [pad] * (length - len(ids)) for ids in sequences],
            "attention_mask": [[1] * len(ids) + [0] * (length - len(ids)) for ids in sequences],
            "labels": [
                [-100] * len(prompt) + target + [eos] + [-100] * (length - len(prompt) - len(target) - 1)
                for prompt, target in zip(prompts["input_ids"], targets, strict=True)
            ],
        }
        if "pixel_values" in prompts:
            data["pixel_values"] = prompts["pixel_values"]
        return BatchFeature(data, tensor_type=return_tensors)

    # ----------------------------------------------------------------------------------------- outputs
    def batch_decode(self, sequences, input_ids=None, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        """Decodes (b, l) token ids; with `input_ids` (the prompt ids given to `generate`, or their length) the
        prompt columns are dropped first, so only the generated text remains, without the space that separates an
        answer from its prompt ('triangle', not ' triangle')."""
        texts = self.tokenizer.batch_decode(
            _drop_prompt(sequences, input_ids), skip_special_tokens=skip_special_tokens, **kwargs
        )
        return texts if input_ids is None else [_answer(text) for text in texts]

    def decode(self, token_ids, input_ids=None, skip_special_tokens: bool = True, **kwargs) -> str:
        """Decodes one sequence (l,); with `input_ids` (the prompt's ids or length) only what follows the prompt,
        without the separating space."""
        text = self.tokenizer.decode(_drop_prompt(token_ids, input_ids), skip_special_tokens=skip_special_tokens,
                                     **kwargs)  # fmt: skip
        return text if input_ids is None else _answer(text)

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens: bool = True, **kwargs):
        """transformers' VLM post-processing (what `pipeline("image-text-to-text")` calls): (b, l) ids → a list of
        texts, (l,) → one text. `input_ids=` drops the prompt as in `batch_decode`."""
        if getattr(generated_outputs, "ndim", None) == 1 or (
            isinstance(generated_outputs, list) and generated_outputs and isinstance(generated_outputs[0], int)
        ):
            return self.decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)
        return self.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values"]


class VLMambaDataCollator:
    """Builds a training batch from examples as this package's loaders give them (`training.data`: easy-VQA, VQA v2,
    COCO captions): `input_ids`, `attention_mask`, `pixel_values` and `labels` (-100 on image, prompt and padding;
    answer + EOS labelled), right-padded. Use it as `Trainer(data_collator=VLMambaDataCollator(processor), ...)`.

    Per example: "image"; the prompt is "prompt" (as given, with its `<image>` mark), else `vqa_prompt("question")`,
    else `caption_prompt()`; the target is the first of "answer", "multiple_choice_answer", "caption", "answers"[0].

    LLaVA rows (`training.data.load_llava`: "id", "image" or None, "conversations" of human / gpt turns) are rendered
    by the processor's chat template, multi-turn, with labels on every assistant turn and its EOS only; a text-only
    row has no image tokens and adds nothing to `pixel_values`, which holds the images of the other rows in order
    (absent when no row has one). `max_length` cuts such sequences on the right (default: none is cut). See
    `chat_vlm_mamba`.
    """

    TARGET_KEYS = ("answer", "multiple_choice_answer", "caption")

    def __init__(self, processor: VLMambaProcessor, max_length: int | None = None):
        self.processor = processor
        self.max_length = max_length

    def __call__(self, examples: list[dict]) -> BatchFeature:
        chats = sum("conversations" in example for example in examples)
        if chats:
            from .chat_vlm_mamba import conversation_batch

            if chats != len(examples):
                raise ValueError("a batch mixes LLaVA rows (with conversations) and prompt/answer rows: use one kind")
            return conversation_batch(self.processor, examples, self.max_length)
        prompts = [self.prompt(example) for example in examples]
        images = [example["image"] for example in examples]
        answers = [self.target(example) for example in examples]
        return self.processor(images=images, text=prompts, answers=answers, return_tensors="pt")

    @staticmethod
    def prompt(example: dict) -> str:
        if "prompt" in example:
            return example["prompt"]
        return vqa_prompt(example["question"]) if "question" in example else caption_prompt()

    @classmethod
    def target(cls, example: dict) -> str:
        for key in cls.TARGET_KEYS:
            if example.get(key) is not None:
                return example[key]
        if example.get("answers"):
            return example["answers"][0]
        raise ValueError(f"an example needs a target, one of {[*cls.TARGET_KEYS, 'answers']}; got {sorted(example)}")


# ------------------------------------------------------------------------------------------------- helpers
def _ensure_token(tokenizer, token: str) -> int:
    """The id of `token`, added to the tokenizer as a special token when it is not in the vocabulary."""
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(token, special=True, normalized=False)], special_tokens=True)
        logger.warning(
            f"added {token} to the tokenizer as id {tokenizer.convert_tokens_to_ids(token)}: resize the model's "
            f"token embeddings to {len(tokenizer)} if they have fewer rows (model.resize_token_embeddings("
            "len(processor.tokenizer)); VLMambaForConditionalGeneration.from_pretrained_parts(..., processor=) does "
            "both) and set config.image_token_id to that id"
        )
    return tokenizer.convert_tokens_to_ids(token)


def _ensure_pad_token(tokenizer) -> None:
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        logger.info(f"the tokenizer has no pad token: padding with its EOS token {tokenizer.eos_token}")


def _refuse_media(name: str, value) -> None:
    """VLM-Mamba reads images and text only: `value` must be None or empty, else ValueError naming `name`."""
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return
    raise ValueError(
        f"{name}: VLM-Mamba takes images and text only; give {name}=None (or an empty list), not a "
        f"{type(value).__name__}"
    )


def _marks_to_prepend(images, marks: list[int]) -> list[int]:
    """`<image>` marks to prepend to each text: a text without marks gets its images (a nested list with one entry
    per text), or one image when the unmarked texts are exactly the images the marks leave over; else none."""
    if (
        isinstance(images, (list, tuple))
        and len(images) == len(marks)
        and all(isinstance(entry, (list, tuple)) for entry in images)
    ):
        return [len(entry) if count == 0 else 0 for entry, count in zip(images, marks, strict=True)]
    unmarked = [int(count == 0) for count in marks]
    return unmarked if sum(marks) + sum(unmarked) == len(make_flat_list_of_images(images)) else [0] * len(marks)


def _answer(generated: str) -> str:
    """The generated text without the separator the answers were trained after. A byte-level BPE tokenizer (the
    bundled one, GPT-2's) decodes the answer's first token "Ġtriangle" as " triangle"; a SentencePiece one drops the
    leading space itself: only a separator actually there is removed."""
    return generated.removeprefix(ANSWER_SEPARATOR)


def _drop_prompt(sequences, input_ids):
    """Drops the first `input_ids.shape[-1]` (or `input_ids`, an int) columns of the sequences."""
    if input_ids is None:
        return sequences
    length = input_ids if isinstance(input_ids, int) else torch.as_tensor(input_ids).shape[-1]
    return sequences[..., length:] if isinstance(sequences, torch.Tensor) else _slice_lists(sequences, length)


def _slice_lists(sequences, length: int):
    if sequences and isinstance(sequences[0], int):
        return sequences[length:]
    return [list(sequence)[length:] for sequence in sequences]


__all__ = [
    "CAPTION_PROMPT",
    "CHAT_TEMPLATE",
    "IMAGE_TOKEN",
    "VQA_PROMPT",
    "VLMambaDataCollator",
    "VLMambaProcessor",
    "bundled_tokenizer",
    "caption_prompt",
    "vqa_prompt",
]
