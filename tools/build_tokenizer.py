"""Builds the small tokenizer that ships with mamba_multimodal (VLM-Mamba's default), byte for byte reproducibly.

    python tools/build_tokenizer.py            # writes src/mamba_multimodal/processing/tokenizer/
    python tools/build_tokenizer.py OUT_DIR    # writes somewhere else (the test compares a fresh build)

A byte-level BPE (GPT-2's scheme: any text encodes, decoding gives the text back exactly) trained on text that ships
inside an installed package: every easy-VQA question and answer (PyPI `easy-vqa`), written in VLM-Mamba's prompt
formats ("Question: ... Answer: ...", "Caption:"). Special tokens first, at fixed ids: <pad> 0, <s> 1, </s> 2,
<unk> 3, <image> 4. The training order is fixed (sorted, deduplicated lines) so the same `tokenizers` version writes
the same `tokenizer.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
VOCAB_SIZE = 384
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "mamba_multimodal" / "processing" / "tokenizer"
TOKENIZER_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "extra_special_tokens": {"image_token": "<image>"},
    "add_bos_token": False,
    "add_eos_token": False,
    "clean_up_tokenization_spaces": False,
    "padding_side": "left",
    "model_max_length": 2048,
}


def training_lines() -> list[str]:
    """easy-VQA's questions and answers (train and test) in the prompt formats, sorted and deduplicated."""
    from easy_vqa import get_answers, get_test_questions, get_train_questions

    lines = {"Caption:"}
    for questions, answers, _ in (get_train_questions(), get_test_questions()):
        pairs = zip(questions, answers, strict=True)
        lines.update(f"Question: {question} Answer: {answer}" for question, answer in pairs)
    lines.update(f"Answer: {answer}" for answer in get_answers())
    return sorted(lines)


def build_tokenizer(vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_lines(), trainer=trainer)
    return tokenizer


def write(out_dir: Path) -> None:
    """tokenizer.json (the `tokenizers` model) and tokenizer_config.json (what `PreTrainedTokenizerFast` reads)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(out_dir / "tokenizer.json"), pretty=True)
    config = json.dumps(TOKENIZER_CONFIG, indent=2, sort_keys=True) + "\n"
    (out_dir / "tokenizer_config.json").write_text(config, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
