"""ONNX export: onnxruntime gives PyTorch's outputs, the batch stays dynamic, nothing half-written is left."""

import contextlib
import json

import onnx
import pytest
import torch
from transformers import PreTrainedConfig
from transformers.modeling_outputs import ImageClassifierOutput

from mamba_multimodal import (
    MambaVisionBackbone,
    MambaVisionConfig,
    MambaVisionForImageClassification,
    VisionMambaConfig,
    VisionMambaModel,
)
from mamba_multimodal.export import EXPORT_TESTED_FROM_TORCH, _torch_older_than, check_onnx, export_onnx
from mamba_multimodal.modeling import ssm
from mamba_multimodal.training import cli

OLD_TORCH = _torch_older_than(EXPORT_TESTED_FROM_TORCH)
exports = pytest.mark.skipif(OLD_TORCH, reason=f"the ONNX export is tested from torch {EXPORT_TESTED_FROM_TORCH} on")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def tiny_classifier(**overrides):
    config = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=5, **overrides)
    return MambaVisionForImageClassification(config).eval()


@exports
def test_onnxruntime_logits_equal_pytorch_at_the_export_resolution_for_any_batch(tmp_path):
    model = tiny_classifier()
    path = export_onnx(model, tmp_path / "model.onnx", image_size=64, batch_size=2)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["pixel_values"] and [o.name for o in graph.output] == ["logits"]
    for batch in (1, 3):
        assert check_onnx(path, model, torch.randn(batch, 3, 64, 64), atol=1e-4) <= 1e-4
    assert model.config.scan_backend == "auto", "the export must restore the config"


class TinyClassifier(torch.nn.Module):
    """A pixel_values → logits model with a given config (one without scan_backend: a Mamba LM's MambaConfig)."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.config = config
        self.head = torch.nn.Linear(3, 2)

    def forward(self, pixel_values):
        return ImageClassifierOutput(logits=self.head(pixel_values.mean(dim=(2, 3))))


SCAN_BACKEND_STATES = {"absent": {}, "None": {"scan_backend": None}, "cpu": {"scan_backend": "cpu"}}


@pytest.mark.parametrize("state", sorted(SCAN_BACKEND_STATES))
@pytest.mark.parametrize("fails", [False, True], ids=["exported", "export-failed"])
def test_the_export_traces_the_pytorch_scan_and_leaves_the_config_exactly_as_it_was(
    state, fails, tmp_path, monkeypatch
):
    config = PreTrainedConfig(**SCAN_BACKEND_STATES[state])
    before = config.to_dict()
    seen_during_export = []

    def spied_export(*args, real_export=torch.onnx.export, **kwargs):
        seen_during_export.append(getattr(config, "scan_backend", "<absent>"))
        if fails:
            raise RuntimeError("export failed")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", spied_export)
    failure = "tested from torch" if OLD_TORCH else "export failed"  # an older torch's failure names the tested one
    with pytest.raises(RuntimeError, match=failure) if fails else contextlib.nullcontext():
        export_onnx(TinyClassifier(config).eval(), tmp_path / "model.onnx", image_size=8, check=False)
    assert seen_during_export == ["pytorch"]
    assert config.to_dict() == before and ("scan_backend" in config.__dict__) == (state != "absent")
    config.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert ("scan_backend" in saved) == (state != "absent")


@exports
def test_odd_resolutions_and_backbone_feature_maps_export(tmp_path):
    backbone = MambaVisionBackbone(MambaVisionConfig.from_preset("mambavision-tiny-test", out_indices=[2, 4])).eval()
    path = export_onnx(backbone, tmp_path / "backbone.onnx", image_size=(72, 56))
    assert [o.name for o in onnx.load(path).graph.output] == ["feature_maps.0", "feature_maps.1"]


@exports
@pytest.mark.skipif(ssm.ssm_cpu.load() is None, reason="no C++ kernel here")
def test_a_vision_mamba_built_on_the_cpu_kernel_exports_through_the_pytorch_scan(tmp_path):
    """The C++ kernel cannot be traced: every mixer must follow the "pytorch" the export sets on the built model."""
    config = VisionMambaConfig(image_size=32, patch_size=8, hidden_size=16, scan_backend="cpu")
    model = VisionMambaModel(config).eval()
    path = export_onnx(model, tmp_path / "model.onnx", batch_size=2)  # checks onnxruntime against PyTorch
    assert [o.name for o in onnx.load(path).graph.output] == ["last_hidden_state", "pooler_output"]
    assert model.config.scan_backend == "cpu", "the export must restore the config"


@exports
def test_a_failed_check_leaves_no_file(tmp_path, monkeypatch):
    import mamba_multimodal.export as export

    def broken_check(*args, **kwargs):
        raise ValueError("onnxruntime differs")

    monkeypatch.setattr(export, "check_onnx", broken_check)
    with pytest.raises(ValueError, match="onnxruntime differs"):
        export_onnx(tiny_classifier(), tmp_path / "model.onnx", image_size=64)
    assert list(tmp_path.iterdir()) == []


def test_bad_sizes_raise_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="batch_size and image_size must be positive"):
        export_onnx(tiny_classifier(), tmp_path / "model.onnx", batch_size=0)


@exports
def test_cli_exports_a_saved_model(tmp_path, capsys):
    tiny_classifier().save_pretrained(tmp_path / "model")
    assert cli.main(["export-onnx", str(tmp_path / "model"), str(tmp_path / "out.onnx"), "--image-size", "64"]) == 0
    assert (tmp_path / "out.onnx").exists() and "wrote" in capsys.readouterr().out


@pytest.mark.skipif(not OLD_TORCH, reason=f"torch {EXPORT_TESTED_FROM_TORCH}+ exports (the tests above)")
def test_an_export_on_an_older_torch_names_the_tested_release(tmp_path):
    with pytest.raises(RuntimeError, match=rf"tested from torch {EXPORT_TESTED_FROM_TORCH}.*upgrade torch"):
        export_onnx(tiny_classifier(), tmp_path / "model.onnx", image_size=64)
    assert list(tmp_path.iterdir()) == []
