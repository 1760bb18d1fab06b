"""VLM-Mamba's answers from transformers' `pipeline("image-text-to-text")` without the space that separates an answer
from its prompt, as `VLMambaProcessor.batch_decode(..., input_ids=...)` returns them ('triangle', not ' triangle').

The pipeline decodes prompt + answer and cuts the decoded prompt off, so the new text keeps the separator that a
byte-level BPE tokenizer decodes from the answer's first token; the full text (prompt + answer) must keep it. Only
the pipeline knows which of the two it returns, so its `postprocess` is wrapped, for VLM-Mamba's processor alone.
Called when the package registers its classes (not part of the remote-code bundle)."""

from __future__ import annotations

import functools

from .processing_vlm_mamba import ANSWER_SEPARATOR, VLMambaProcessor


def strip_answer_separator_in_the_pipeline() -> None:
    """Wraps `ImageTextToTextPipeline.postprocess`: with a `VLMambaProcessor`, a new text (return_full_text=False)
    and the new assistant message of a chat lose the separator; every other pipeline is unchanged. Idempotent."""
    from transformers.pipelines.image_text_to_text import ImageTextToTextPipeline, ReturnType

    postprocess = ImageTextToTextPipeline.postprocess
    if getattr(postprocess, "strips_answer_separator", False):
        return

    @functools.wraps(postprocess)
    def wrapped(self, model_outputs, return_type=ReturnType.FULL_TEXT, *args, **kwargs):
        records = postprocess(self, model_outputs, return_type, *args, **kwargs)
        if not isinstance(getattr(self, "processor", None), VLMambaProcessor):
            return records
        for record in records:
            record["generated_text"] = _without_separator(record, return_type)
        return records

    wrapped.strips_answer_separator = True
    ImageTextToTextPipeline.postprocess = wrapped


def _without_separator(record: dict, return_type):
    generated, prompt = record["generated_text"], record["input_text"]
    if isinstance(generated, str):  # the new text alone, or the prompt string + the new text (kept whole)
        return generated.removeprefix(ANSWER_SEPARATOR) if return_type.name == "NEW_TEXT" else generated
    is_new_message = (
        isinstance(generated, list)
        and isinstance(prompt, list)
        and len(generated) == len(prompt) + 1
        and generated[-1].get("role") == "assistant"
        and isinstance(generated[-1].get("content"), str)
    )
    if is_new_message:  # a chat's answer as a new assistant message (not a continued prefill)
        return [*generated[:-1], {**generated[-1], "content": generated[-1]["content"].removeprefix(ANSWER_SEPARATOR)}]
    return generated


__all__ = ["strip_answer_separator_in_the_pipeline"]
