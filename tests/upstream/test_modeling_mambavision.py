"""transformers' ModelTesterMixin, BackboneTesterMixin and PipelineTesterMixin over MambaVision (MambaVisionModel,
MambaVisionForImageClassification, MambaVisionBackbone)."""

import unittest

import torch
from transformers_tests.test_backbone_common import BackboneTesterMixin
from transformers_tests.test_configuration_common import ConfigTester
from transformers_tests.test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor
from transformers_tests.test_pipeline_mixin import PipelineTesterMixin

from mamba_multimodal.configuration.configuration_mambavision import MambaVisionConfig
from mamba_multimodal.modeling.modeling_mambavision import (
    MambaVisionBackbone,
    MambaVisionForImageClassification,
    MambaVisionModel,
)
from mamba_multimodal.registry import FAMILIES

from .common import ConfigTests


class MambaVisionModelTester:
    def __init__(self, parent, batch_size=2):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        config = self.get_config()
        self.image_size = config.image_size
        self.num_channels = config.num_channels
        self.hidden_size = config.num_features
        self.stem_size = config.dim
        self.hidden_sizes = config.hidden_sizes
        self.num_stages = len(config.depths)
        self.num_labels = config.num_labels
        self.out_features = config.out_features
        self.out_indices = config.out_indices

    def get_config(self):
        return FAMILIES["mambavision"].tiny_config()

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        labels = ids_tensor([self.batch_size], self.num_labels)
        return self.get_config(), pixel_values, labels

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values, _ = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


class MambaVisionModelTest(ConfigTests, ModelTesterMixin, PipelineTesterMixin, unittest.TestCase):
    all_model_classes = (MambaVisionModel, MambaVisionForImageClassification, MambaVisionBackbone)
    pipeline_model_mapping = {
        "image-feature-extraction": MambaVisionModel,
        "image-classification": MambaVisionForImageClassification,
    }
    has_attentions = False  # its attention blocks do not return their weights (Mamba mixers precede them)
    test_can_init_all_missing_weights_before_2023 = True  # 5.25 dates a model by a copyright line, which we omit
    test_resize_embeddings = False  # pixels in, no token embeddings

    def setUp(self):
        self.model_tester = MambaVisionModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=MambaVisionConfig, has_text_modality=False, common_properties=[]
        )

    def test_hidden_states_output(self):
        """Hierarchical, as ConvNext's test checks it: the stem's feature map, then one per stage, (b, C, H, W) with
        the stage's width and the resolution halved from stage to stage (the stem: 1/4 of the image)."""
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        tester = self.model_tester
        side = tester.image_size // 4
        expected = [(tester.stem_size, side, side)]
        expected += [(width, side >> stage, side >> stage) for stage, width in enumerate(tester.hidden_sizes)]
        for model_class in (MambaVisionModel, MambaVisionForImageClassification):
            for through_config in (False, True):
                config.output_hidden_states = through_config
                model = model_class(config).eval()
                with torch.no_grad():
                    outputs = model(**inputs_dict, **({} if through_config else {"output_hidden_states": True}))
                self.assertEqual([tuple(h.shape[1:]) for h in outputs.hidden_states], expected)

    @unittest.skip(reason="No token embeddings: a convolutional stem takes the pixels (as ConvNext's test says)")
    def test_model_get_set_embeddings(self):
        pass


class MambaVisionBackboneTest(BackboneTesterMixin, unittest.TestCase):
    all_model_classes = (MambaVisionBackbone,)
    config_class = MambaVisionConfig
    has_attentions = False

    def setUp(self):
        self.model_tester = MambaVisionModelTester(self)
