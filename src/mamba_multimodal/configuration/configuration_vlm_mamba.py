"""VLM-Mamba configuration: an attention-free vision-language model (vision tower → MLP projector → Mamba LM).

`VLMambaConfig` is composite, as LLaVA's: `vision_config` is one of
- `VisionMambaConfig` (model_type "vision_mamba", the default): patch embedding + learned position embedding + residual
  Mamba blocks over the patch sequence, optionally bidirectional (a backward scan beside the forward one, as Vim), the
  attention-free encoder the original VLM-Mamba describes;
- `MambaVisionConfig` (model_type "mambavision"): NVIDIA's hybrid backbone, so its pretrained weights can serve as the
  tower; its stage-4 map (b, 8·dim, h/32, w/32) gives (h/32)·(w/32) image tokens;
- `VLMambaPatchConfig` (model_type "vlm_mamba_patch"): no encoder at all, the flattened pixel patches go straight to
  the projector (Fuyu-style).
`text_config` is transformers' `MambaConfig` (the name `text_config` is what transformers' generation looks for).
Every image becomes `image_seq_length` embeddings placed at the `<image>` token positions of the prompt.
"""

from __future__ import annotations

import math

from transformers import AutoConfig, MambaConfig
from transformers.configuration_utils import PreTrainedConfig

from .validation import ValidatedOnAssignment, is_finite_number, is_positive_int

PROJECTOR_ACTIVATIONS = ("gelu", "relu", "silu", "tanh")
FUSION_METHODS = ("concat", "add", "mlp")
VISION_STEMS = ("patchify", "conv")


def _check_image_geometry(config) -> None:
    """image_size, patch_size, num_channels: positive ints, and the patches tile the image."""
    for name in ("image_size", "patch_size", "num_channels"):
        value = getattr(config, name)
        if not is_positive_int(value):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if config.image_size % config.patch_size:
        raise ValueError(
            f"image_size ({config.image_size}) must be a multiple of patch_size ({config.patch_size}): "
            "the patches tile the image"
        )


class VLMambaPatchConfig(ValidatedOnAssignment, PreTrainedConfig):
    r"""No vision encoder: an image is cut into (image_size / patch_size)² patches of patch_size² · num_channels
    pixels each, which the projector maps into the language model (Fuyu-style).

    Args:
        image_size (`int`): side of the square input image (default 64).
        patch_size (`int`): side of a square patch (default 8).
        num_channels (`int`): image channels (default 3).
    """

    model_type = "vlm_mamba_patch"

    def __init__(self, image_size: int = 64, patch_size: int = 8, num_channels: int = 3, **kwargs):
        self.image_size, self.patch_size, self.num_channels = image_size, patch_size, num_channels
        super().__init__(**kwargs)
        self._validate_fields()

    def _validate_fields(self) -> None:
        _check_image_geometry(self)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def hidden_size(self) -> int:
        """Width of what the tower hands the projector: one flattened patch."""
        return self.patch_size**2 * self.num_channels


class VisionMambaConfig(ValidatedOnAssignment, PreTrainedConfig):
    r"""The attention-free vision encoder: patch embedding (`stem`) + learned position embedding +
    `num_hidden_layers` pre-norm residual Mamba blocks over the patches in raster order + a final RMSNorm. With
    `bidirectional`, every block also scans the patches in reverse and adds that output (Vim, arXiv 2401.09417), so
    every patch sees the whole image. Mamba fields as transformers' `MambaConfig`.

    Args:
        image_size, patch_size, num_channels (`int`): as `VLMambaPatchConfig` (default 64, 8, 3).
        stem (`str`): how patches become tokens: "patchify" (default, ViT / Vim: one conv with kernel = stride =
            patch_size) or "conv" (a convolutional stem: log2(patch_size) 3×3 stride-2 convs with GELU between,
            widths doubling up to hidden_size, as "Early Convolutions Help Transformers See Better", arXiv
            2106.14881; patch_size must be a power of 2). The conv stem sees edges and corners across patch
            borders: it learns shapes much faster (`bench/bench_vlm_learning.py`).
        hidden_size (`int`): width d of the patch tokens (default 64).
        num_hidden_layers (`int`): Mamba blocks (default 2).
        state_size, conv_kernel, expand (`int`): Mamba's n, conv width and d_in / d (default 16, 4, 2).
        bidirectional (`bool`): also scan the patches in reverse (default True).
        layer_norm_epsilon (`float`): RMSNorm epsilon (default 1e-5).
    """

    model_type = "vision_mamba"

    def __init__(
        self,
        image_size: int = 64,
        patch_size: int = 8,
        num_channels: int = 3,
        stem: str = "patchify",
        hidden_size: int = 64,
        num_hidden_layers: int = 2,
        state_size: int = 16,
        conv_kernel: int = 4,
        expand: int = 2,
        bidirectional: bool = True,
        layer_norm_epsilon: float = 1e-5,
        **kwargs,
    ):
        self.image_size, self.patch_size, self.num_channels = image_size, patch_size, num_channels
        self.stem = stem
        self.hidden_size, self.num_hidden_layers = hidden_size, num_hidden_layers
        self.state_size, self.conv_kernel, self.expand = state_size, conv_kernel, expand
        self.bidirectional, self.layer_norm_epsilon = bidirectional, layer_norm_epsilon
        super().__init__(**kwargs)
        self._validate_fields()

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def stem_widths(self) -> list[int]:
        """Output channels of the conv stem's convolutions, doubling up to hidden_size (at least 8 each)."""
        depth = self.patch_size.bit_length() - 1
        return [max(8, self.hidden_size >> (depth - 1 - i)) for i in range(depth - 1)] + [self.hidden_size]

    def mamba_config(self) -> MambaConfig:
        """The blocks' settings as the `MambaConfig` that `modeling/mamba.py`'s blocks take."""
        return MambaConfig(
            hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers, state_size=self.state_size,
            conv_kernel=self.conv_kernel, expand=self.expand, layer_norm_epsilon=self.layer_norm_epsilon,
            vocab_size=1, use_mambapy=False,
        )  # fmt: skip

    def _validate_fields(self) -> None:
        _check_image_geometry(self)
        if self.stem not in VISION_STEMS:
            raise ValueError(f"stem must be one of {VISION_STEMS}, got {self.stem!r}")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(f"stem='conv' halves the image log2(patch_size) times: patch_size must be a power of 2 "
                             f"and at least 2, got {self.patch_size}")  # fmt: skip
        for name in ("hidden_size", "num_hidden_layers", "state_size", "conv_kernel", "expand"):
            if not is_positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional must be True or False, got {self.bidirectional!r}")
        if not is_finite_number(self.layer_norm_epsilon) or self.layer_norm_epsilon <= 0:
            raise ValueError(f"layer_norm_epsilon must be a finite number > 0, got {self.layer_norm_epsilon!r}")


_VISION_CONFIGS = {"vision_mamba": VisionMambaConfig, "vlm_mamba_patch": VLMambaPatchConfig}


def _vision_config(value) -> PreTrainedConfig:
    """A vision sub-config from a config, a dict with its model_type, or None (VisionMamba's defaults)."""
    if value is None:
        return VisionMambaConfig()
    if isinstance(value, PreTrainedConfig):
        if value.model_type not in (*_VISION_CONFIGS, "mambavision"):
            raise ValueError(_vision_error(value.model_type))
        return value
    if isinstance(value, dict):
        settings = dict(value)
        model_type = settings.pop("model_type", "vision_mamba")
        if model_type == "mambavision":
            from .configuration_mambavision import MambaVisionConfig

            return MambaVisionConfig(**settings)
        if model_type not in _VISION_CONFIGS:
            raise ValueError(_vision_error(model_type))
        return _VISION_CONFIGS[model_type](**settings)
    raise ValueError(f"vision_config must be a config, a dict or None, got {type(value).__name__}")


def _vision_error(model_type) -> str:
    allowed = ", ".join(repr(name) for name in (*_VISION_CONFIGS, "mambavision"))
    return f"vision_config.model_type must be one of {allowed}, got {model_type!r}"


def _text_config(value) -> MambaConfig:
    if value is None:
        return MambaConfig(vocab_size=1024, hidden_size=128, num_hidden_layers=4, state_size=16, use_mambapy=False)
    if isinstance(value, MambaConfig):
        return value
    if isinstance(value, dict):
        settings = {k: v for k, v in value.items() if k != "model_type"}
        if value.get("model_type", "mamba") != "mamba":
            raise ValueError(f"text_config.model_type must be 'mamba', got {value['model_type']!r}")
        return MambaConfig(**settings)
    raise ValueError(f"text_config must be a MambaConfig, a dict or None, got {type(value).__name__}")


class VLMambaConfig(ValidatedOnAssignment, PreTrainedConfig):
    r"""Configuration of a VLM-Mamba model. `VLMambaConfig()` builds a small working model (VisionMamba 64×64 / 8 →
    64 image tokens, a 4-layer width-128 Mamba LM over a 1024-token vocabulary).

    Args:
        vision_config (`VisionMambaConfig`, `MambaVisionConfig`, `VLMambaPatchConfig` or dict): the vision tower.
        text_config (`MambaConfig` or dict): the language model.
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
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    def __init__(
        self,
        vision_config=None,
        text_config=None,
        image_token_id: int | None = None,
        projector_hidden_act: str = "gelu",
        projector_num_layers: int = 2,
        vision_feature_layer: int = -1,
        tie_word_embeddings: bool = False,
        fusion_method: str = "concat",
        **kwargs,
    ):
        self.vision_config = _vision_config(vision_config)
        self.fusion_method = fusion_method
        self.text_config = _text_config(text_config)
        self.image_token_id = self.text_config.vocab_size - 1 if image_token_id is None else image_token_id
        self.projector_hidden_act = projector_hidden_act
        self.projector_num_layers = projector_num_layers
        self.vision_feature_layer = vision_feature_layer
        # The top-level flag decides (transformers ties by it); the text config says the same, not MambaConfig's True.
        self.text_config.tie_word_embeddings = tie_word_embeddings
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self._validate_fields()

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

    def _validate_fields(self) -> None:
        # A dict becomes a sub-config in __init__ only; an assigned one must be a config already.
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
        if self.projector_hidden_act not in PROJECTOR_ACTIVATIONS:
            raise ValueError(
                f"projector_hidden_act must be one of {PROJECTOR_ACTIVATIONS}, got {self.projector_hidden_act!r}"
            )
        if self.fusion_method not in FUSION_METHODS:
            raise ValueError(f"fusion_method must be one of {FUSION_METHODS}, got {self.fusion_method!r}")
        if not is_positive_int(self.projector_num_layers):
            raise ValueError(f"projector_num_layers must be a positive int, got {self.projector_num_layers!r}")
        if not isinstance(self.vision_feature_layer, int) or isinstance(self.vision_feature_layer, bool):
            raise ValueError(f"vision_feature_layer must be an int index, got {self.vision_feature_layer!r}")
        if self.vision_mode == "vision_mamba":
            depth = self.vision_config.num_hidden_layers + 1  # the embeddings, then every block (the last normed)
            if not -depth <= self.vision_feature_layer < depth:
                raise ValueError(
                    f"vision_feature_layer must index one of the tower's {depth} hidden states, "
                    f"got {self.vision_feature_layer}"
                )
        elif self.vision_feature_layer != -1:
            raise ValueError(f"vision_feature_layer applies to a VisionMamba tower only, got {self.vision_mode!r}")


__all__ = ["VLMambaConfig", "VLMambaPatchConfig", "VisionMambaConfig"]
