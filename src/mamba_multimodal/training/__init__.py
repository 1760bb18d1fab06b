"""Training: data loaders, metrics, LoRA presets and the command line."""
