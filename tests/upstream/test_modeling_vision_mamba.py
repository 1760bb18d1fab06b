"""transformers' ModelTesterMixin and PipelineTesterMixin over VisionMamba (VisionMambaModel, VLM-Mamba's default
vision encoder)."""

import unittest

from transformers_tests.test_configuration_common import ConfigTester
from transformers_tests.test_modeling_common import ModelTesterMixin, floats_tensor
from transformers_tests.test_pipeline_mixin import PipelineTesterMixin

from mamba_multimodal.configuration.configuration_vlm_mamba import VisionMambaConfig
from mamba_multimodal.modeling.modeling_vlm_mamba import VisionMambaModel
from mamba_multimodal.registry import FAMILIES

from .common import ConfigTests


class VisionMambaModelTester:
    def __init__(self, parent, batch_size=2):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        config = self.get_config()
        self.image_size = config.image_size
        self.num_channels = config.num_channels
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.seq_length = (config.image_size // config.patch_size) ** 2

    def get_config(self):
        return FAMILIES["vision_mamba"].tiny_config()

    def prepare_config_and_inputs_for_common(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        return self.get_config(), {"pixel_values": pixel_values}


class VisionMambaModelTest(ConfigTests, ModelTesterMixin, PipelineTesterMixin, unittest.TestCase):
    all_model_classes = (VisionMambaModel,)
    pipeline_model_mapping = {"image-feature-extraction": VisionMambaModel}
    has_attentions = False  # attention-free: bidirectional selective scans
    test_can_init_all_missing_weights_before_2023 = True  # 5.25 dates a model by a copyright line, which we omit
    test_resize_embeddings = False  # pixels in, no token embeddings

    def setUp(self):
        self.model_tester = VisionMambaModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=VisionMambaConfig, has_text_modality=False, common_properties=[]
        )

    @unittest.skip(reason="No token embeddings: a convolutional patch stem takes the pixels")
    def test_model_get_set_embeddings(self):
        pass
