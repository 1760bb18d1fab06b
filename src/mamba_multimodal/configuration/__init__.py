"""Configurations, one file per model family."""
