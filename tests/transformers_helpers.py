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


def load_without_package(spec: list[dict], root) -> dict:
    """Runs `remote_code_load.py` on `spec` (written to root/spec.json) in a process that cannot import
    mamba_multimodal, offline, with its own remote-code module cache; returns its report (outputs in root/remote)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(root)
    (root / "spec.json").write_text(json.dumps(spec))
    remote = root / "remote"
    remote.mkdir()
    environment = {**os.environ, "HF_MODULES_CACHE": str(root / "modules"), "HF_HUB_OFFLINE": "1"}
    script = Path(__file__).with_name("remote_code_load.py")
    done = subprocess.run([sys.executable, str(script), str(root / "spec.json"), str(remote)],
                          capture_output=True, text=True, env=environment, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((remote / "report.json").read_text())
