"""transformers' ModelTesterMixin and PipelineTesterMixin over Coupled Mamba (CoupledMambaModel,
CoupledMambaForSequenceClassification)."""

import unittest

from transformers_tests.test_configuration_common import ConfigTester
from transformers_tests.test_modeling_common import ModelTesterMixin, floats_tensor
from transformers_tests.test_pipeline_mixin import PipelineTesterMixin

from mamba_multimodal.configuration.configuration_coupled_mamba import CoupledMambaConfig
from mamba_multimodal.modeling.modeling_coupled_mamba import CoupledMambaForSequenceClassification, CoupledMambaModel
from mamba_multimodal.registry import FAMILIES

from .common import ConfigTests


class CoupledMambaModelTester:
    def __init__(self, parent, batch_size=2, seq_length=7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_labels = config.num_labels

    def get_config(self):
        return FAMILIES["coupled_mamba"].tiny_config()

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        inputs = {
            f"{modality}_features": floats_tensor([self.batch_size, self.seq_length, size])
            for modality, size in zip(config.modalities, config.input_sizes, strict=True)
        }
        return config, inputs


class CoupledMambaModelTest(ConfigTests, ModelTesterMixin, PipelineTesterMixin, unittest.TestCase):
    all_model_classes = (CoupledMambaModel, CoupledMambaForSequenceClassification)
    pipeline_model_mapping = {}  # features of three modalities in: no transformers pipeline takes them
    has_attentions = False  # attention-free: coupled selective scans
    test_can_init_all_missing_weights_before_2023 = True  # 5.25 dates a model by a copyright line, which we omit
    test_resize_embeddings = False  # features in, no token embeddings
    test_mismatched_shapes = False  # provokes its mismatch through the text vocabulary, which features-in has not

    def setUp(self):
        self.model_tester = CoupledMambaModelTester(self)
        self.config_tester = ConfigTester(
            self,
            config_class=CoupledMambaConfig,
            has_text_modality=False,
            common_properties=["hidden_size", "num_hidden_layers"],
        )

    @unittest.skip(reason="No token embeddings: each modality's features go through a linear projection")
    def test_model_get_set_embeddings(self):
        pass
