"""Images of every pixel type keep their range in both image processors (a 16-bit image is not clipped to white),
pixel values of any float dtype are taken by the models, and an image of the wrong size given to VLM-Mamba is
reported as such, with both sizes, rather than as a token-count mismatch."""

import numpy as np
import pytest
import torch
from PIL import Image

from mamba_multimodal import (
    MambaVisionConfig,
    MambaVisionForImageClassification,
    MambaVisionImageProcessor,
    VLMambaConfig,
    VLMambaForConditionalGeneration,
)
from mamba_multimodal.processing.image_processing_vlm_mamba import VLMambaImageProcessor

PROCESSORS = {
    "mambavision": lambda: MambaVisionImageProcessor(size=32, do_normalize=False),
    "vlm_mamba": lambda: VLMambaImageProcessor(size=32, do_normalize=False),
}
LEVELS = np.linspace(0, 65535, 32).round().astype(np.uint16)  # a full-range horizontal gradient
GRADIENT_16 = np.tile(LEVELS, (32, 1))
SIXTEEN_BIT = {
    "PIL I;16": lambda: Image.fromarray(GRADIENT_16),
    "PIL I": lambda: Image.fromarray(GRADIENT_16.astype(np.int32)),
    "numpy uint16": lambda: GRADIENT_16,
}


@pytest.mark.parametrize("image", SIXTEEN_BIT.values(), ids=SIXTEEN_BIT.keys())
@pytest.mark.parametrize("make", PROCESSORS.values(), ids=PROCESSORS.keys())
def test_a_16_bit_gradient_keeps_its_range(make, image):
    pixels = make()(image(), return_tensors="np")["pixel_values"][0]  # (3, 32, 32), each row the gradient
    expected = LEVELS / 65535  # the gradient's own levels, in [0, 1]
    np.testing.assert_allclose(pixels, np.broadcast_to(expected, pixels.shape), atol=1e-6)
    assert (pixels >= 0.999).mean() < 0.05  # not the clipped image (99.6% white before)


FLOATS = {
    "numpy float64": lambda image: image.astype(np.float64),
    "torch float64": lambda image: torch.from_numpy(image.astype(np.float64)),
    "numpy float16": lambda image: image.astype(np.float16),
}


@pytest.mark.parametrize("convert", FLOATS.values(), ids=FLOATS.keys())
@pytest.mark.parametrize("make", PROCESSORS.values(), ids=PROCESSORS.keys())
def test_float_images_of_any_width_give_the_float32_result(make, convert):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.float32)
    processor = make()
    expected = processor(image, return_tensors="pt")["pixel_values"]
    pixels = processor(convert(image), return_tensors="pt")["pixel_values"]
    assert pixels.dtype == torch.float32
    torch.testing.assert_close(pixels, expected)


def tiny_vlm(vision_config) -> VLMambaForConditionalGeneration:
    text = {"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1, "state_size": 4}
    return VLMambaForConditionalGeneration(VLMambaConfig(vision_config=vision_config, text_config=text)).eval()


TOWERS = {
    "mambavision": lambda: MambaVisionConfig.from_preset("mambavision-tiny-test").to_dict(),
    "vision_mamba": lambda: {"image_size": 64, "patch_size": 16, "hidden_size": 16, "num_hidden_layers": 1},
    "patch": lambda: {"model_type": "vlm_mamba_patch", "image_size": 64, "patch_size": 16},
}


@pytest.fixture(scope="module", params=TOWERS.values(), ids=TOWERS.keys())
def vlm(request):
    torch.manual_seed(0)
    return tiny_vlm(request.param())


def vlm_inputs(model, pixel_values):
    config = model.config
    ids = torch.tensor([[config.image_token_id] * config.image_seq_length + [5, 6]])
    return {"input_ids": ids, "pixel_values": pixel_values}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_the_vlm_takes_pixel_values_of_any_float_dtype(vlm, dtype):
    pixels = torch.rand(1, 3, 64, 64).to(dtype)
    with torch.no_grad():
        expected = vlm(**vlm_inputs(vlm, pixels.float())).logits
        torch.testing.assert_close(vlm(**vlm_inputs(vlm, pixels)).logits, expected)


@pytest.mark.parametrize("size", [32, 96, 72])
def test_the_vlm_reports_a_wrong_image_size_with_both_sizes(vlm, size):
    with pytest.raises(ValueError) as caught:
        vlm(**vlm_inputs(vlm, torch.rand(1, 3, size, size)))
    message = str(caught.value)
    assert f"the images are {size}×{size}, the tower takes 64×64" in message
    assert "image tokens" not in message and "\n" not in message


def test_mambavision_takes_float64_pixel_values():
    torch.manual_seed(0)
    model = MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-tiny-test")).eval()
    pixels = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=pixels).logits, model(pixel_values=pixels.float()).logits)
