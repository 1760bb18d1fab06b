"""transformers' ModelTesterMixin over the package's Mamba LM (MambaModel, MambaForCausalLM)."""

import unittest

from transformers import MambaConfig
from transformers_tests.generation.test_utils import GenerationTesterMixin
from transformers_tests.test_configuration_common import ConfigTester
from transformers_tests.test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask
from transformers_tests.test_pipeline_mixin import PipelineTesterMixin

from mamba_multimodal.modeling.mamba import MambaForCausalLM, MambaModel
from mamba_multimodal.registry import FAMILIES

from .common import ConfigTests


class MambaModelTester:
    def __init__(self, parent, batch_size=2, seq_length=7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        config = self.get_config()
        self.vocab_size = config.vocab_size
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers

    def get_config(self):
        return FAMILIES["mamba"].tiny_config()

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {"input_ids": input_ids, "attention_mask": attention_mask}


class MambaModelTest(ConfigTests, ModelTesterMixin, GenerationTesterMixin, PipelineTesterMixin, unittest.TestCase):
    all_model_classes = (MambaModel, MambaForCausalLM)
    pipeline_model_mapping = {"feature-extraction": MambaModel, "text-generation": MambaForCausalLM}
    has_attentions = False  # attention-free: a selective scan
    test_can_init_all_missing_weights_before_2023 = True  # 5.25 dates a model by a copyright line, which we omit

    def setUp(self):
        self.model_tester = MambaModelTester(self)
        self.config_tester = ConfigTester(self, config_class=MambaConfig, hidden_size=16, common_properties=[])
