"""Multi-turn chats for VLM-Mamba: LLaVA's `conversations` as chat messages, and training batches of them with labels
on the assistant turns only, taken from the chat template's `{% generation %}` spans.

LLaVA's rows (haotian-liu/LLaVA, docs/Data.md; `training.data.load_llava` reads them): {"id", "image" (absent or
None: a text-only row), "conversations": [{"from": "human" | "gpt" | "system", "value": str}, ...]}, with an
`<image>` mark in the first human turn of a row that has an image. As LLaVA's own preprocessing does, the mark is
moved to the front of its turn (the turn's text stripped) and a conversation that opens with a gpt turn loses that
turn. The processor's chat template then renders, e.g. for two rounds:

    <image>Question: {q1} Answer: {a1}</s>Question: {q2} Answer: {a2}</s>

and the labels are the tokens of " {a1}</s>" and " {a2}</s>" (-100 elsewhere): exactly what a generation prompt
(`apply_chat_template(..., add_generation_prompt=True)`, which ends with " Answer:") is followed by. Each `<image>`
becomes `image_seq_length` image tokens, as in `VLMambaProcessor`. Glossary: P image tokens per image.
"""

from __future__ import annotations

from transformers.feature_extraction_utils import BatchFeature
from transformers.utils.chat_template_utils import render_jinja_template

LLAVA_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}

# The default chat template of releases before multi-turn training (saved in their folders' chat_template.jinja, and
# in the shipped demo base): the text it renders is the current template's, but its generation span also held the
# cue (" Answer:") and it refused a system turn. `VLMambaProcessor` loads it as the current `CHAT_TEMPLATE`.
EARLIER_CHAT_TEMPLATE = (
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
    "{% generation %}{{ ns.cue }} {{ texts }}{{ eos_token if eos_token is defined else '' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ raise_exception('VLM-Mamba prompts have user and assistant turns only, got ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ ns.cue }}{%- endif -%}"
)


def llava_messages(conversations: list[dict], has_image: bool, image_token: str = "<image>", row_id=None) -> list:
    """LLaVA turns → chat messages [{"role", "content": [{"type": "image"}, {"type": "text", "text"}]}] for the
    processor's chat template: `from` human / gpt / system → user / assistant / system; with `has_image`, an image item
    opens the human turn that held the `<image>` mark (the first human turn when none did), the mark removed and
    that turn's text stripped; a leading gpt turn is dropped (LLaVA's `preprocess` does the same).

    Raises ValueError naming the row for an unknown `from`, more than one `<image>` mark, a mark in a gpt or system
    turn, or a mark in a row without an image."""
    where = f"row {row_id!r}" if row_id is not None else "a LLaVA row"
    turns = list(conversations)
    if turns and turns[0].get("from") == "gpt":
        turns = turns[1:]
    unknown = sorted({turn.get("from") for turn in turns} - set(LLAVA_ROLES), key=str)
    if unknown:
        raise ValueError(f"{where}: conversations[].from must be one of {', '.join(LLAVA_ROLES)}, got {unknown}")
    marked = [index for index, turn in enumerate(turns) if image_token in turn["value"]]
    marks = sum(turns[index]["value"].count(image_token) for index in marked)
    if marks and not has_image:
        raise ValueError(f"{where} has an {image_token} mark but no image")
    if marks > 1 or any(turns[index]["from"] != "human" for index in marked):
        raise ValueError(f"{where}: one {image_token} mark, in a human turn, is supported; turns {marked} hold {marks}")
    humans = [index for index, turn in enumerate(turns) if turn["from"] == "human"]
    image_turn = (marked or humans or [None])[0] if has_image else None
    if has_image and image_turn is None:
        raise ValueError(f"{where} has an image but no human turn to hold it")
    messages = []
    for index, turn in enumerate(turns):
        text = turn["value"]
        content = [{"type": "text", "text": text}]
        if index == image_turn:
            text = text.replace(image_token, "").strip()
            content = [{"type": "image"}] + ([{"type": "text", "text": text}] if text else [])
        messages.append({"role": LLAVA_ROLES[turn["from"]], "content": content})
    return messages


def assistant_mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """1 for each token (character `offsets`, the tokenizer's `offset_mapping`) inside a generation span (character
    `[start, end)` ranges of the rendered text), else 0. A token is inside when it overlaps a span, or, having no
    width, sits in one: byte-level tokenizers that trim offsets give a lone space token no width. An added BOS, (0, 0),
    is never inside: a span starts after a turn's cue."""
    return [
        int(any(start < max(token_end, token_start + 1) and token_start < end for start, end in spans))
        for token_start, token_end in offsets
    ]


def conversation_tokens(processor, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one conversation: the processor's chat template rendered with its generation spans,
    tokenized as the processor tokenizes a prompt (the tokenizer's special tokens included), each image token
    repeated `image_seq_length` times; labels = the ids inside the assistant spans, -100 elsewhere."""
    tokenizer = processor.tokenizer
    (text,), (spans,) = render_jinja_template(
        conversations=[messages],
        chat_template=processor.chat_template,
        return_assistant_tokens_mask=True,
        **tokenizer.special_tokens_map,
    )
    encoded = tokenizer(text, return_offsets_mapping=True)
    mask = assistant_mask(encoded["offset_mapping"], spans)
    input_ids, labels = [], []
    for token, labelled in zip(encoded["input_ids"], mask, strict=True):
        copies = processor.image_seq_length if token == processor.image_token_id else 1
        input_ids += [token] * copies
        labels += [token if labelled else -100] * copies
    return input_ids, labels


def conversation_batch(processor, examples: list[dict], max_length: int | None = None) -> BatchFeature:
    """A right-padded training batch of LLaVA rows ({"conversations", "image" or None, ...}): input_ids,
    attention_mask, labels (b, l) and, when some rows have an image, pixel_values (images, 3, H, W) holding those
    rows' images in batch order — a text-only row has no image tokens and no entry there (the model fills image
    tokens with the images in order); `max_length` cuts longer sequences on the right.

    A batch of text-only rows leaves the vision tower and projector out of the step: under DDP with gradient
    checkpointing (where Trainer stops looking for unused parameters) pass `--ddp-find-unused-parameters true`."""
    tokenizer = processor.tokenizer
    if tokenizer.eos_token_id is None:
        raise ValueError("a training batch ends each assistant turn with EOS, but the tokenizer has no eos_token")
    sequences = []
    for example in examples:
        has_image = example.get("image") is not None
        messages = llava_messages(example["conversations"], has_image, processor.image_token, example.get("id"))
        input_ids, labels = conversation_tokens(processor, messages)
        if max_length is not None and len(input_ids) > max_length:
            if processor.image_token_id in input_ids[max_length:]:
                raise ValueError(f"max_length {max_length} cuts the image tokens of row {example.get('id')!r}")
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        sequences.append((input_ids, labels))
    length = max(len(input_ids) for input_ids, _ in sequences)
    pad = tokenizer.pad_token_id
    data = {
        "input_ids": [ids + [pad] * (length - len(ids)) for ids, _ in sequences],
        "attention_mask": [[1] * len(ids) + [0] * (length - len(ids)) for ids, _ in sequences],
        "labels": [labels + [-100] * (length - len(labels)) for _, labels in sequences],
    }
    batch = BatchFeature(data, tensor_type="pt")
    images = [example["image"] for example in examples if example.get("image") is not None]
    if images:
        batch["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return batch


__all__ = [
    "EARLIER_CHAT_TEMPLATE",
    "LLAVA_ROLES",
    "assistant_mask",
    "conversation_batch",
    "conversation_tokens",
    "llava_messages",
]
