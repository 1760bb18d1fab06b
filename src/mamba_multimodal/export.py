"""ONNX export of this package's vision models through their pure-PyTorch path.

NVIDIA's MambaVision cannot be exported (its scan is a CUDA extension). Ours can: while `torch.onnx.export` traces,
`ssm.selective_scan` takes its plain-PyTorch chunked path, so the file runs anywhere onnxruntime does.

    from mamba_multimodal.export import export_onnx
    export_onnx(model, "mambavision-t.onnx")              # checks onnxruntime against PyTorch before keeping the file

or from the shell: `mamba-multimodal export-onnx nvidia/MambaVision-T-1K mambavision-t.onnx`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from packaging.version import Version
from torch import nn
from transformers.utils import logging

from .file_utils import staged_into

logger = logging.get_logger(__name__)

_TWO_GIB = 2 * 1024**3
# The oldest torch whose exporter passes tests/test_export.py (2.11 and 2.13 do). torch 2.6's dynamo exporter cannot
# translate BatchNorm with onnxscript 0.7 ("'tuple' object has no attribute 'dtype'"); 2.7-2.10 are untried.
EXPORT_TESTED_FROM_TORCH = "2.11"


def _torch_older_than(release: str) -> bool:
    return Version(torch.__version__).release[:2] < Version(release).release[:2]


class _TensorOutputs(nn.Module):
    """Wraps a model so that it takes `pixel_values` and returns its output tensors as a flat tuple."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_flatten(self.model(pixel_values=pixel_values), self.names).values())


def _flatten(outputs, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """ModelOutput → {"logits": t} or {"feature_maps.0": t, ...}; tuples of tensors become numbered names."""
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, torch.Tensor):
            flat[key] = value
        elif isinstance(value, (tuple, list)):
            flat.update({f"{key}.{i}": item for i, item in enumerate(value) if isinstance(item, torch.Tensor)})
    return flat if names is None else {name: flat[name] for name in names}


@contextlib.contextmanager
def _pytorch_scan(model: nn.Module):
    """Forces the traceable scan path while the export traces, whatever the config asked for; afterwards (also after
    a failure) the config is as it was: its old `scan_backend`, or none at all if it had none (a `MambaConfig`)."""
    config = getattr(model, "config", None)
    if config is None:
        yield
        return
    had_backend, previous = "scan_backend" in vars(config), getattr(config, "scan_backend", None)
    config.scan_backend = "pytorch"
    try:
        yield
    finally:
        if had_backend:
            config.scan_backend = previous
        else:
            del config.scan_backend


def _example_input(model: nn.Module, image_size: int | tuple[int, int] | None, batch_size: int) -> torch.Tensor:
    config = model.config
    size = image_size if image_size is not None else getattr(config, "image_size", 224)
    height, width = (size, size) if isinstance(size, int) else size
    if batch_size < 1 or height < 1 or width < 1:
        raise ValueError(f"batch_size and image_size must be positive, got {batch_size} and {size}")
    parameter = next(model.parameters())
    channels = getattr(config, "num_channels", 3)
    return torch.randn(batch_size, channels, height, width, dtype=parameter.dtype, device=parameter.device)


def check_onnx(path: str | os.PathLike, model: nn.Module, pixel_values: torch.Tensor, atol: float = 1e-4) -> float:
    """Runs the exported file in onnxruntime and returns the largest |onnxruntime - PyTorch| over all outputs.

    Raises ValueError when it exceeds `atol`.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = _flatten(model(pixel_values=pixel_values))
    names = [output.name for output in session.get_outputs()]
    got = session.run(names, {"pixel_values": pixel_values.detach().cpu().numpy()})
    error = max(float((torch.from_numpy(g) - expected[n].cpu()).abs().max()) for n, g in zip(names, got, strict=True))
    if error > atol:
        raise ValueError(f"onnxruntime differs from PyTorch by {error:.2e} (> atol {atol:.0e}) in {path}")
    return error


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int = 1,
    opset: int = 18,
    dynamic_batch: bool = True,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Exports a vision model taking `pixel_values` (MambaVision's classifier, base model or backbone) to ONNX.

    Args:
        model: the model; exported in eval mode, restored afterwards.
        path: the `.onnx` file to write. It appears only once the export (and the check) succeeded.
        image_size: export resolution, int or (height, width); default `model.config.image_size`. The graph is
            specialised to it (window padding and the scan's chunking depend on it); the batch axis stays dynamic.
        check: run the file in onnxruntime on a fresh input and compare with PyTorch (max-abs <= `atol`).
    Returns:
        The path written. Outputs are named after the model output's fields ("logits", "pooler_output",
        "feature_maps.0", ...); the input is "pixel_values" (batch, channels, height, width).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    example = _example_input(model, image_size, batch_size)
    # Written under a temporary folder with the final names (a > 2 GiB model's weights go to `<name>.data`, which the
    # .onnx file refers to by name), then moved: a failed export or check leaves nothing behind.
    try:
        with staged_into(path.parent) as staging:
            with torch.inference_mode():
                names = list(_flatten(model(pixel_values=example)))
            wrapper = _TensorOutputs(model, names).eval()
            _export(wrapper, example, staging / path.name, names, opset, dynamic_batch, model)
            if check:
                fresh = torch.randn(batch_size + int(dynamic_batch), *example.shape[1:], dtype=example.dtype)
                difference = check_onnx(staging / path.name, model, fresh, atol)
                logger.info(f"onnxruntime max-abs difference: {difference:.2e}")
    finally:
        model.train(was_training)
    return path


def _export(wrapper, example, target, names, opset, dynamic_batch, model) -> None:
    dynamic_shapes = {"pixel_values": {0: torch.export.Dim("batch", min=1, max=4096)}} if dynamic_batch else None
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    with _pytorch_scan(model), _naming_the_tested_torch():
        torch.onnx.export(
            wrapper,
            (example,),
            target,
            dynamo=True,
            opset_version=opset,
            input_names=["pixel_values"],
            output_names=names,
            dynamic_shapes=dynamic_shapes,
            external_data=weight_bytes > _TWO_GIB * 0.9,  # one self-contained file below protobuf's 2 GiB limit
            verbose=False,
        )


@contextlib.contextmanager
def _naming_the_tested_torch():
    """An exporter failure on a torch older than the tested one says so (the exporter's own error is the cause)."""
    try:
        yield
    except Exception as error:
        if not _torch_older_than(EXPORT_TESTED_FROM_TORCH):
            raise
        raise RuntimeError(
            f"torch {torch.__version__}'s ONNX exporter failed on this model; the export is tested from torch "
            f"{EXPORT_TESTED_FROM_TORCH} on (torch 2.6 fails on BatchNorm): upgrade torch to export"
        ) from error


__all__ = ["EXPORT_TESTED_FROM_TORCH", "check_onnx", "export_onnx"]
