"""Evaluation metrics with the official definitions.

- `sentiment.py`: MMSA's CMU-MOSI / CMU-MOSEI / CH-SIMS metrics (`sentiment_metrics`, `sentiment_compute_metrics`).
- `vqa.py`: the official VQA accuracy (`vqa_accuracy`) and its answer normalisation (VQA v2's and TextVQA's).
- `benchmarks.py`: GQA accuracy (`gqa_accuracy`) and POPE's metrics (`pope_metrics`) as LLaVA-1.5's scripts do.
- `captions.py`: COCO caption BLEU-4, ROUGE-L and CIDEr-D through pycocoevalcap, without Java (`caption_metrics`).
"""

from .benchmarks import gqa_accuracy, pope_answer, pope_metrics
from .captions import PTB_PUNCTUATION, caption_metrics, tokenize_caption
from .sentiment import CLASS_NAMES, DATASETS, MODES, sentiment_compute_metrics, sentiment_metrics
from .vqa import (
    normalize_answer,
    normalize_textvqa_answer,
    process_digit_article,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "MODES",
    "PTB_PUNCTUATION",
    "caption_metrics",
    "gqa_accuracy",
    "normalize_answer",
    "normalize_textvqa_answer",
    "pope_answer",
    "pope_metrics",
    "process_digit_article",
    "process_punctuation",
    "question_accuracy",
    "sentiment_compute_metrics",
    "sentiment_metrics",
    "tokenize_caption",
    "vqa_accuracy",
]
