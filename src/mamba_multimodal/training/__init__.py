"""Training: data loaders, metrics, the task table and the one training flow (`flow`) under the command line."""

from .data import load_coco_captions, load_coco_karpathy, load_easy_vqa, load_mmsa, load_mult, load_vqa_v2
from .flow import train_sentiment
from .lora import get_lora_model, lora_config_for
from .metrics import caption_metrics, sentiment_compute_metrics, sentiment_metrics, vqa_accuracy
from .trainer import MambaTrainer, no_decay_parameter_names

__all__ = [
    "MambaTrainer",
    "caption_metrics",
    "get_lora_model",
    "load_coco_captions",
    "load_coco_karpathy",
    "load_easy_vqa",
    "load_mmsa",
    "load_mult",
    "load_vqa_v2",
    "lora_config_for",
    "no_decay_parameter_names",
    "sentiment_compute_metrics",
    "sentiment_metrics",
    "train_sentiment",
    "vqa_accuracy",
]
