"""`tensors_of`: the tensors of a model output, for comparing two models' outputs. Imports only torch and transformers,
so that `remote_code_load.py` (a process without mamba_multimodal) shares it with the tests."""

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
