"""VLM-Mamba configuration: an attention-free vision-language model (vision tower → MLP projector → Mamba LM).

`VLMambaConfig` is composite, as LLaVA's: `vision_config` is one of
- `VisionMambaConfig` (model_type "vision_mamba", the default; `configuration_vision_mamba.py`): patch embedding +
  learned position embedding + residual Mamba blocks over the patch sequence, optionally bidirectional (a backward
  scan beside the forward one, as Vim), the attention-free encoder the original VLM-Mamba describes;
- `MambaVisionConfig` (model_type "mambavision"): NVIDIA's hybrid backbone, so its pretrained weights can serve as the
  tower; its stage-4 map (b, 8·dim, h/32, w/32) gives (h/32)·(w/32) image tokens;
- `VLMambaPatchConfig` (model_type "vlm_mamba_patch"): no encoder at all, the flattened pixel patches go straight to
  the projector (Fuyu-style).
`text_config` is a `MambaConfig` (transformers' plus `scan_backend`; the name `text_config` is what transformers'
generation looks for).
Every image becomes `image_seq_length` embeddings placed at the `<image>` token positions of the prompt.
"""

import contextlib
import copy
import math
from typing import Literal

from transformers import AutoConfig
from transformers import MambaConfig as TransformersMambaConfig
from transformers.configuration_utils import PreTrainedConfig

from .configuration_mamba import MambaConfig
from .configuration_vision_mamba import PatchGeometry, VisionMambaConfig
from .validation import check_positive_ints, strict_config


@strict_config
class VLMambaPatchConfig(PatchGeometry):
    r"""No vision encoder: an image is cut into (image_size / patch_size)² patches of patch_size² · num_channels
    pixels each, which the projector maps into the language model (Fuyu-style).

    Args:
        image_size (`int`): side of the square input image (default 64).
        patch_size (`int`): side of a square patch (default 8).
        num_channels (`int`): image channels (default 3).
    """

    model_type = "vlm_mamba_patch"

    @property
    def hidden_size(self) -> int:
        """Width of what the tower hands the projector: one flattened patch."""
        return self.patch_size**2 * self.num_channels


_VISION_CONFIGS = {"vision_mamba": VisionMambaConfig, "vlm_mamba_patch": VLMambaPatchConfig}


@contextlib.contextmanager
def _named_sub_config(name: str):
    """A sub-config's refusal ("hidden_size must be ...") says which sub-config: "text_config.hidden_size ..."."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{name}.{error}") from error


@_named_sub_config("vision_config")
def _vision_config(value) -> PreTrainedConfig:
    """A vision sub-config from a config, a dict with its model_type, or None (VisionMamba's defaults)."""
    if value is None:
        return VisionMambaConfig()
    if isinstance(value, dict):
        settings = dict(value)
        model_type = settings.pop("model_type", "vision_mamba")
        if model_type == "mambavision":
            from .configuration_mambavision import MambaVisionConfig

            return MambaVisionConfig(**settings)
        if model_type not in _VISION_CONFIGS:
            raise ValueError(_vision_error(model_type).removeprefix("vision_config."))
        return _VISION_CONFIGS[model_type](**settings)
    return value  # a config: validate_fields checks it


def _without_labels(vision: PreTrainedConfig) -> PreTrainedConfig:
    """The tower has no classification head: a MambaVision config's labels (by default the 1000 ImageNet class names,
    62 KB of the VLM's config.json) are dropped, from a copy (the config given may be a classifier's). A saved VLM
    config that has them still loads; saved again, it has none."""
    if vision.model_type != "mambavision" or vision.id2label is None:
        return vision
    vision = copy.deepcopy(vision)
    vision.update({"id2label": None, "label2id": None})
    return vision


def _vision_error(model_type) -> str:
    allowed = ", ".join(repr(name) for name in (*_VISION_CONFIGS, "mambavision"))
    return f"vision_config.model_type must be one of {allowed}, got {model_type!r}"


@_named_sub_config("text_config")
def _text_config(value) -> PreTrainedConfig:
    """This package's `MambaConfig` from one, from transformers' (with the same fields), a dict or None."""
    if value is None:
        return MambaConfig(vocab_size=1024, hidden_size=128, num_hidden_layers=4, state_size=16, use_mambapy=False)
    if isinstance(value, TransformersMambaConfig) and not isinstance(value, MambaConfig):
        value = value.to_dict()
    if isinstance(value, dict):
        if value.get("model_type", "mamba") != "mamba":
            raise ValueError(f"model_type must be 'mamba', got {value['model_type']!r}")
        return MambaConfig(**{key: item for key, item in value.items() if key != "model_type"})
    return value  # validate_fields checks it


@strict_config
class VLMambaConfig(PreTrainedConfig):
    r"""Configuration of a VLM-Mamba model. `VLMambaConfig()` builds a small working model (VisionMamba 64×64 / 8 →
    64 image tokens, a 4-layer width-128 Mamba LM over a 1024-token vocabulary).

    Args:
        vision_config (`VisionMambaConfig`, `MambaVisionConfig`, `VLMambaPatchConfig` or dict): the vision tower.
        text_config (`MambaConfig` or dict): the language model (transformers' `MambaConfig` becomes this package's).
        image_token_id (`int`): the id of the `<image>` token whose positions receive the image embeddings (default:
            the last id of the vocabulary).
        projector_hidden_act (`str`): activation of the MLP projector (default "gelu").
        projector_num_layers (`int`): Linear layers of the projector, 1 or more (default 2, LLaVA-1.5's MLP).
        vision_feature_layer (`int`): which hidden state of a VisionMamba tower feeds the projector (default -1, the
            final normed output; other indices pick a block's output, as LLaVA's second-to-last layer).
        tie_word_embeddings (`bool`): tie the LM head to the token embeddings (default False); copied into
            `text_config`.
        fusion_method (`str`): how `VLMambaForImageTextClassification` fuses image and text (any text length):
            "concat" (default, early fusion: the image tokens, then the text, through the Mamba stack), "add" (the
            pooled image added to every text embedding before the stack) or "mlp" (late fusion: an MLP over the
            pooled image and the stack's summary of the text).
    """

    model_type = "vlm_mamba"
    sub_configs = {"vision_config": AutoConfig, "text_config": MambaConfig}  # not AutoConfig: transformers' Mamba's

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    image_token_id: int | None = None
    projector_hidden_act: Literal["gelu", "relu", "silu", "tanh"] = "gelu"
    projector_num_layers: int = 2
    vision_feature_layer: int = -1
    tie_word_embeddings: bool = False
    fusion_method: Literal["concat", "add", "mlp"] = "concat"

    def __post_init__(self, **kwargs):
        self.vision_config = _without_labels(_vision_config(self.vision_config))
        self.text_config = _text_config(self.text_config)
        if self.image_token_id is None:
            self.image_token_id = self.text_config.vocab_size - 1
        # The top-level flag decides (transformers ties by it); the text config says the same, not MambaConfig's True.
        self.text_config.tie_word_embeddings = self.tie_word_embeddings
        super().__post_init__(**kwargs)

    @property
    def vision_mode(self) -> str:
        """ "vision_mamba", "mambavision" or "patch"."""
        return {"vlm_mamba_patch": "patch"}.get(self.vision_config.model_type, self.vision_config.model_type)

    @property
    def image_seq_length(self) -> int:
        """Image tokens per image: the tower's output positions at its configured image size."""
        vision = self.vision_config
        if self.vision_mode == "mambavision":
            size = vision.image_size if isinstance(vision.image_size, int) else vision.image_size[0]
            return math.ceil(size / 32) ** 2
        return vision.num_patches

    @property
    def vision_hidden_size(self) -> int:
        """Width of the features that the projector takes."""
        vision = self.vision_config
        return vision.num_features if self.vision_mode == "mambavision" else vision.hidden_size

    def validate_fields(self):
        # A dict becomes a sub-config at construction only; an assigned one must be a config already.
        if not isinstance(self.vision_config, PreTrainedConfig):
            raise ValueError(f"vision_config must be a config object, got {type(self.vision_config).__name__}")
        if self.vision_config.model_type not in (*_VISION_CONFIGS, "mambavision"):
            raise ValueError(_vision_error(self.vision_config.model_type))
        if not isinstance(self.text_config, MambaConfig):
            raise ValueError(f"text_config must be a MambaConfig, got {type(self.text_config).__name__}")
        vocab = self.text_config.vocab_size
        if not isinstance(self.image_token_id, int) or not 0 <= self.image_token_id < vocab:
            raise ValueError(
                f"image_token_id must be a token id of the language model, in [0, {vocab}), got {self.image_token_id!r}"
            )
        check_positive_ints(self, "projector_num_layers")
        if self.vision_mode == "vision_mamba":
            depth = self.vision_config.num_hidden_layers + 1  # the embeddings, then every block (the last normed)
            if not -depth <= self.vision_feature_layer < depth:
                raise ValueError(
                    f"vision_feature_layer must index one of the tower's {depth} hidden states, "
                    f"got {self.vision_feature_layer}"
                )
        elif self.vision_feature_layer != -1:
            raise ValueError(f"vision_feature_layer applies to a VisionMamba tower only, got {self.vision_mode!r}")


__all__ = ["VLMambaConfig", "VLMambaPatchConfig"]
