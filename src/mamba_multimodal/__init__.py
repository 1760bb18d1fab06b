"""mamba_multimodal: Mamba-based multimodal models as first-class Hugging Face models, fast on CPU.

Importing the package registers its configurations, models and processors with transformers' Auto classes.
"""

from .modeling import ssm
from .modeling.mamba import MambaForCausalLM, MambaModel, MambaPreTrainedModel

__version__ = "0.1.0"

__all__ = ["MambaForCausalLM", "MambaModel", "MambaPreTrainedModel", "__version__", "ssm"]
