"""Training: data loaders, metrics, Trainer fine-tuning for sentiment, and the command line."""

from .data import load_mmsa, load_mult
from .metrics import sentiment_compute_metrics, sentiment_metrics
from .sentiment import train_sentiment

__all__ = ["load_mmsa", "load_mult", "sentiment_compute_metrics", "sentiment_metrics", "train_sentiment"]
