"""Test helpers that import only torch and transformers, so that `remote_code_load.py` (a process without
mamba_multimodal) shares them with the tests."""

import torch
import transformers


def tensors_of(output) -> list[torch.Tensor]:
    """Every tensor of a model output (nested tuples of feature maps or hidden states too), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, transformers.utils.ModelOutput):
        output = output.to_tuple()
    if isinstance(output, (tuple, list)):
        return [tensor for item in output for tensor in tensors_of(item)]
    return []  # a cache


def auto_processor_class(auto: str):
    """transformers' Auto processor class by name; AutoImageProcessor from its module: transformers 5.17's top-level
    name is a placeholder that demands torchvision."""
    if auto == "AutoImageProcessor":
        from transformers.models.auto.image_processing_auto import AutoImageProcessor

        return AutoImageProcessor
    return getattr(transformers, auto)
