"""VisionMamba (Vim), VLM-Mamba's default vision tower and a model of its own: the conv stem, the bidirectional scan,
and a scan backend set on the built model. The checks every family shares are in test_families.py; the tower inside
the VLM in test_modeling_vlm_mamba.py."""

import torch
import torch.nn.functional as F

from mamba_multimodal import VisionMambaConfig, VisionMambaModel
from mamba_multimodal.modeling import ssm

TINY = {"image_size": 16, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4}


def test_the_conv_stem_is_strided_3x3_convs_that_keep_the_activation_scale():
    config = VisionMambaConfig(image_size=64, patch_size=16, hidden_size=96, stem="conv")
    stem = VisionMambaModel(config).patch_embeddings
    convs = list(stem.convs)
    assert [conv.out_channels for conv in convs] == [12, 24, 48, 96] == config.stem_widths
    assert all(conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1) for conv in convs)
    torch.manual_seed(0)
    pixels = torch.randn(8, 3, 64, 64)
    # An independent rerun of the stem: conv, then GELU before every later conv.
    expected = pixels
    for index, conv in enumerate(convs):
        expected = F.conv2d(expected if index == 0 else F.gelu(expected), conv.weight, conv.bias, stride=2, padding=1)
    with torch.no_grad():
        features = stem(pixels)
    torch.testing.assert_close(features, expected)
    assert features.shape == (8, 96, 4, 4)
    # He init: the last map keeps a scale near the input's (the default std 0.02 would give ~3e-4).
    assert 0.3 < features.std().item() < 3.0


def test_the_bidirectional_tower_lets_the_first_patch_see_the_last():
    config = VisionMambaConfig(**TINY)
    for bidirectional, sees in ((True, True), (False, False)):
        config.bidirectional = bidirectional
        tower = VisionMambaModel(config).eval()
        pixel_values = torch.randn(1, 3, 16, 16)
        changed = pixel_values.clone()
        changed[..., 8:, 8:] += 1.0  # the last patch
        with torch.no_grad():
            first, first_changed = tower(pixel_values).last_hidden_state[0, 0], tower(changed).last_hidden_state[0, 0]
        assert (not torch.allclose(first, first_changed)) == sees


def test_a_scan_backend_set_on_the_built_model_reaches_every_scan(monkeypatch):
    """As `export_onnx` sets "pytorch" on the model's config while it traces: no mixer scans on a stale copy."""
    model = VisionMambaModel(VisionMambaConfig(**TINY)).eval()
    asked = []
    resolve_backend = ssm.resolve_backend

    def recording_resolve_backend(tensor, backend="auto", kernel="selective_scan"):
        asked.append(backend)
        return resolve_backend(tensor, backend, kernel)

    monkeypatch.setattr(ssm, "resolve_backend", recording_resolve_backend)
    for backend in ("reference", "pytorch"):
        model.config.scan_backend = backend
        asked.clear()
        with torch.no_grad():
            model(torch.randn(1, 3, 16, 16))
        assert asked == [backend] * 4  # 2 layers × (the forward and the backward mixer)
