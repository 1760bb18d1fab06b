"""Training: data loaders, metrics, LoRA presets and the command line."""

from .data import load_mmsa, load_mult
from .metrics import sentiment_compute_metrics, sentiment_metrics

__all__ = ["load_mmsa", "load_mult", "sentiment_compute_metrics", "sentiment_metrics"]
