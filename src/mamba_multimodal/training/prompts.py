"""The prompts LLaVA-1.5 and Cobra evaluated VQAv2, GQA, TextVQA and POPE with, recorded once (`PROMPTS`), for
`mamba-multimodal evaluate vqa|gqa|textvqa|pope` (`builders.vqa_score`, `benchmarks`).

A prompt here is the text of the user turn; the model's chat template (the processor's) wraps it around the image, as
LLaVA's conversation template and Cobra's prompt builder wrap theirs. `--prompt-style` picks the column of `PROMPTS`:
    llava-1.5  LLaVA-1.5's question files (`scripts/v1_5/eval/*.sh` read llava_vqav2_mscoco_test-dev2015.jsonl,
               llava_gqa_testdev_balanced.jsonl, llava_textvqa_val_v051_ocr.jsonl, llava_pope_test.jsonl; lmms-eval's
               gqa / pope / textvqa tasks use the same text), the image as "<image>\\n" before it.
    cobra      Cobra's (TRI-ML vlm-evaluation `models/prismatic.py` get_vqa_chat_prompt_fn for vqa-v2, gqa, pope and
               text-vqa: "\\n{question}\\n" + the short-answer line, which Cobra's ZephyrChatPromptBuilder strips; the
               image is a prefix of patches). Same text as LLaVA-1.5's but for TextVQA, where Cobra's paper reports
               its 58.2 with the OCR tokens before the question ("OCR First"; 43.0 with them last); that order is the
               one LLaVA's eval_textvqa.py also parses ("Reference OCR token: ...\\n{question}\\n...").
    question   the question alone: the format the easy-VQA recipes train on (the default chat template renders it
               "<image>Question: {question} Answer:", exactly `processing_vlm_mamba.vqa_prompt`).
Without OCR tokens (no Rosetta OCR file) the TextVQA prompt drops its OCR line, as vlm-evaluation's no-OCR variant.
Generation is greedy, `--max-new-tokens` per answer (LLaVA: temperature 0), batched by --per-device-eval-batch-size.
"""

from __future__ import annotations

from .arguments import UsageError

SHORT_ANSWER = "Answer the question using a single word or phrase."
_OCR_LINE = "Reference OCR token: {ocr}\n"
_SHORT = "{question}\n" + SHORT_ANSWER
PROMPTS = {
    "llava-1.5": {"vqa": _SHORT, "gqa": _SHORT, "pope": _SHORT, "textvqa": "{question}\n" + _OCR_LINE + SHORT_ANSWER},
    "cobra": {"vqa": _SHORT, "gqa": _SHORT, "pope": _SHORT, "textvqa": _OCR_LINE + _SHORT},
    "question": {"vqa": "{question}", "gqa": "{question}", "pope": "{question}", "textvqa": "{question}"},
}
PROMPT_STYLES = tuple(PROMPTS)
# The style without --prompt-style: vqa keeps what it scored before (its recipes train on the question alone).
DEFAULT_STYLES = {"vqa": "question", "gqa": "llava-1.5", "textvqa": "llava-1.5", "pope": "llava-1.5"}


def prompt_style(task: str, data_args) -> str:
    style = getattr(data_args, "prompt_style", None) or DEFAULT_STYLES[task]
    if style not in PROMPTS:
        raise UsageError(f"--prompt-style: one of {', '.join(PROMPT_STYLES)}, not {style!r}")
    return style


def benchmark_texts(task: str, style: str, questions: list[str], ocr_tokens: list[list[str]] | None = None):
    """The user-turn texts of `task` ("vqa", "gqa", "textvqa", "pope") in `style` (a column of `PROMPTS`)."""
    template = PROMPTS[style][task]
    ocr_tokens = ocr_tokens or [[] for _ in questions]
    return [
        (template if tokens else template.replace(_OCR_LINE, "")).format(question=question, ocr=", ".join(tokens))
        for question, tokens in zip(questions, ocr_tokens, strict=True)
    ]


def benchmark_prompts(processor, task: str, style: str, questions: list[str], ocr_tokens=None) -> list[str]:
    """The full prompts: each user turn (an image, then `benchmark_texts`) through the processor's chat template."""
    texts = benchmark_texts(task, style, questions, ocr_tokens)
    conversations = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
                     for text in texts]  # fmt: skip
    if not conversations:
        return []
    return processor.apply_chat_template(conversations, tokenize=False, add_generation_prompt=True)


__all__ = ["DEFAULT_STYLES", "PROMPTS", "PROMPT_STYLES", "SHORT_ANSWER", "benchmark_prompts", "benchmark_texts",
           "prompt_style"]  # fmt: skip
