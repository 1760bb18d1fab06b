"""mamba_multimodal: Mamba-based multimodal models as first-class Hugging Face models, fast on CPU.

Importing the package registers its configurations, models and processors with transformers' Auto classes.
"""

from .configuration import configuration_coupled_mamba as _configuration_coupled_mamba
from .configuration import configuration_mambavision as _configuration_mambavision
from .configuration import configuration_vlm_mamba as _configuration_vlm_mamba
from .configuration.configuration_coupled_mamba import CoupledMambaConfig
from .configuration.configuration_mambavision import MambaVisionConfig
from .configuration.configuration_vlm_mamba import VisionMambaConfig, VLMambaConfig, VLMambaPatchConfig
from .modeling import modeling_coupled_mamba as _modeling_coupled_mamba
from .modeling import modeling_mambavision as _modeling_mambavision
from .modeling import modeling_vlm_mamba as _modeling_vlm_mamba
from .modeling import ssm
from .modeling.mamba import MambaForCausalLM, MambaModel, MambaPreTrainedModel
from .modeling.modeling_coupled_mamba import (
    CoupledMambaCache,
    CoupledMambaForSequenceClassification,
    CoupledMambaModel,
    CoupledMambaPreTrainedModel,
)
from .modeling.modeling_mambavision import (
    MambaVisionBackbone,
    MambaVisionForImageClassification,
    MambaVisionModel,
    MambaVisionPreTrainedModel,
)
from .modeling.modeling_vlm_mamba import (
    VisionMambaModel,
    VLMambaForConditionalGeneration,
    VLMambaForImageTextClassification,
    VLMambaModel,
    VLMambaPreTrainedModel,
)
from .processing import feature_processing_coupled_mamba as _feature_processing_coupled_mamba
from .processing import image_processing_mambavision as _image_processing_mambavision
from .processing import image_processing_vlm_mamba as _image_processing_vlm_mamba
from .processing import processing_vlm_mamba as _processing_vlm_mamba
from .processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from .processing.image_processing_mambavision import MambaVisionImageProcessor
from .processing.image_processing_vlm_mamba import VLMambaImageProcessor
from .processing.processing_vlm_mamba import VLMambaDataCollator, VLMambaProcessor

__version__ = "0.1.0"

# MambaVision: AutoConfig, AutoModel, AutoModelForImageClassification, AutoBackbone, AutoImageProcessor.
_configuration_mambavision.register()
_modeling_mambavision.register()
_image_processing_mambavision.register()
# Coupled Mamba: AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoFeatureExtractor.
_configuration_coupled_mamba.register()
_modeling_coupled_mamba.register()
_feature_processing_coupled_mamba.register()
# VLM-Mamba: AutoConfig (vlm_mamba, vision_mamba, vlm_mamba_patch), AutoModel, AutoModelForImageTextToText,
# AutoModelForSequenceClassification (image + text), AutoImageProcessor, AutoProcessor.
_configuration_vlm_mamba.register()
_modeling_vlm_mamba.register()
_image_processing_vlm_mamba.register()
_processing_vlm_mamba.register()

__all__ = [
    "CoupledMambaCache",
    "CoupledMambaConfig",
    "CoupledMambaFeatureProcessor",
    "CoupledMambaForSequenceClassification",
    "CoupledMambaModel",
    "CoupledMambaPreTrainedModel",
    "MambaForCausalLM",
    "MambaModel",
    "MambaPreTrainedModel",
    "MambaVisionBackbone",
    "MambaVisionConfig",
    "MambaVisionForImageClassification",
    "MambaVisionImageProcessor",
    "MambaVisionModel",
    "MambaVisionPreTrainedModel",
    "VLMambaConfig",
    "VLMambaDataCollator",
    "VLMambaForConditionalGeneration",
    "VLMambaForImageTextClassification",
    "VLMambaImageProcessor",
    "VLMambaModel",
    "VLMambaPatchConfig",
    "VLMambaPreTrainedModel",
    "VLMambaProcessor",
    "VisionMambaConfig",
    "VisionMambaModel",
    "__version__",
    "ssm",
]
