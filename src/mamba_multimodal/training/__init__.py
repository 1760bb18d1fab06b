"""Training: data loaders, metrics, Trainer fine-tuning for sentiment, and the command line."""

from .data import load_coco_captions, load_coco_karpathy, load_easy_vqa, load_mmsa, load_mult, load_vqa_v2
from .lora import lora_config_for
from .metrics import caption_metrics, sentiment_compute_metrics, sentiment_metrics, vqa_accuracy
from .sentiment import train_sentiment

__all__ = [
    "caption_metrics",
    "load_coco_captions",
    "load_coco_karpathy",
    "load_easy_vqa",
    "load_mmsa",
    "load_mult",
    "load_vqa_v2",
    "lora_config_for",
    "sentiment_compute_metrics",
    "sentiment_metrics",
    "train_sentiment",
    "vqa_accuracy",
]
