"""mamba_multimodal: Mamba-based multimodal models as first-class Hugging Face models, fast on CPU.

Importing the package registers its configurations, models and processors with transformers' Auto classes.
"""

from . import sharing  # the sharing hook every save_pretrained calls (hub_mixin): bundle, auto_map, card
from ._version import __version__
from .configuration.configuration_coupled_mamba import CoupledMambaConfig
from .configuration.configuration_mambavision import MambaVisionConfig
from .configuration.configuration_vision_mamba import VisionMambaConfig
from .configuration.configuration_vlm_mamba import VLMambaConfig, VLMambaPatchConfig
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
from .modeling.modeling_vision_mamba import VisionMambaModel
from .modeling.modeling_vlm_mamba import (
    VLMambaForConditionalGeneration,
    VLMambaForImageTextClassification,
    VLMambaModel,
    VLMambaPreTrainedModel,
)
from .processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from .processing.image_processing_mambavision import MambaVisionImageProcessor
from .processing.image_processing_vlm_mamba import VLMambaImageProcessor
from .processing.processing_vlm_mamba import VLMambaDataCollator, VLMambaProcessor
from .registry import register_all as _register_all

# Every family's configs, models and processors with transformers' Auto classes (AutoConfig, AutoModel,
# AutoModelForImageClassification, AutoBackbone, AutoModelForSequenceClassification, AutoModelForImageTextToText,
# AutoImageProcessor, AutoFeatureExtractor, AutoProcessor): the table is `registry.FAMILIES`.
_register_all()

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
    "sharing",
    "ssm",
]
