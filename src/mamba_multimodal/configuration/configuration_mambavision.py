"""MambaVision configuration (Hatamizadeh & Kautz, "MambaVision: A Hybrid Mamba-Transformer Vision Backbone",
CVPR 2025, arXiv 2407.08083).

Field names are NVIDIA's (`depths`, `num_heads`, `window_size`, `dim`, `in_dim`, `mlp_ratio`, `drop_path_rate`,
`layer_scale`, `layer_scale_conv`), so the `config.json` of any `nvidia/MambaVision-*` Hub repository loads as a
`MambaVisionConfig`; the preprocessing fields they carry (`mean`, `std`, `crop_pct`, `crop_mode`) are kept too.

Every released variant is one call away:

    config = MambaVisionConfig.from_preset("mambavision-t")  # also "nvidia/MambaVision-T-1K", "MambaVision-L2-512-21K"
    sorted(PRESETS)                                          # every name

Differences from NVIDIA's own configuration class (which only stores the architecture fields):
- `num_labels` defaults to 1000 (NVIDIA's `num_classes`), and 1000 labels without given names are the ImageNet-1k
  class names (`imagenet_labels.py`): NVIDIA's released `config.json` files carry no `id2label`, so their
  classifiers would otherwise answer "LABEL_731" instead of "plunger, plumber's helper";
- values are validated at the door and on every later assignment (`validation.strict_config`): a wrong one (NaN and
  ±inf included) raises `ValueError` naming the field and what is allowed, and changes nothing;
- the mixer sizes that NVIDIA hard-codes in `Block` (`d_state=8`, `d_conv=3`, `expand=1`) are fields with those
  defaults (`state_size`, `conv_kernel`, `expand`), and `scan_backend` picks the selective-scan path (see `ssm.py`).
"""

from typing import Literal, get_args

from transformers.backbone_utils import BackboneConfigMixin

from .imagenet_labels import IMAGENET_1K_LABELS
from .validation import (
    Ints,
    Number,
    Numbers,
    ScanConfig,
    check_positive_ints,
    check_positive_numbers,
    check_rates,
    is_finite_number,
    is_positive_int,
    strict_config,
)

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
NUM_STAGES = 4
CropMode = Literal["center", "squash"]
CROP_MODES = get_args(CropMode)

# Released variants: NVIDIA's factory defaults and `default_cfgs` (official mamba_vision.py), README table.
_HEADS_SMALL, _HEADS_LARGE = [2, 4, 8, 16], [4, 8, 16, 32]
_WINDOW_224, _WINDOW_256, _WINDOW_512 = [8, 8, 14, 7], [8, 8, 16, 8], [8, 8, 32, 16]
_T = {"depths": [1, 3, 8, 4], "num_heads": _HEADS_SMALL, "dim": 80, "in_dim": 32, "drop_path_rate": 0.2}
_B = {"depths": [3, 3, 10, 5], "num_heads": _HEADS_SMALL, "dim": 128, "in_dim": 64, "drop_path_rate": 0.3}
_L = {"depths": [3, 3, 10, 5], "num_heads": _HEADS_LARGE, "dim": 196, "in_dim": 64, "drop_path_rate": 0.3}
_L2 = {**_L, "depths": [3, 3, 12, 5]}
_L3 = {"depths": [3, 3, 20, 10], "num_heads": _HEADS_LARGE, "dim": 256, "in_dim": 64, "drop_path_rate": 0.5}
_LAYER_SCALE = {"layer_scale": 1e-5, "layer_scale_conv": None}
_AT_224 = {"window_size": _WINDOW_224, "image_size": 224, "crop_mode": "center"}
_AT_512 = {"window_size": _WINDOW_512, "image_size": 512, "crop_pct": 0.93, "crop_mode": "squash"}

PRESETS: dict[str, dict] = {
    "mambavision-t": {**_T, **_AT_224, "crop_pct": 1.0},
    "mambavision-t2": {**_T, "depths": [1, 3, 11, 4], **_AT_224, "crop_pct": 0.98},
    "mambavision-s": {**_T, "depths": [3, 3, 7, 5], "dim": 96, "in_dim": 64, **_AT_224, "crop_pct": 0.93},
    "mambavision-b": {**_B, **_LAYER_SCALE, **_AT_224, "crop_pct": 1.0},
    "mambavision-l": {**_L, **_LAYER_SCALE, **_AT_224, "crop_pct": 1.0},
    "mambavision-l2": {**_L2, **_LAYER_SCALE, **_AT_224, "crop_pct": 1.0},
    "mambavision-b-21k": {**_B, **_LAYER_SCALE, **_AT_224, "crop_pct": 1.0},
    "mambavision-l-21k": {**_L, **_LAYER_SCALE, **_AT_224, "crop_pct": 1.0},
    "mambavision-l2-512-21k": {**_L2, **_LAYER_SCALE, **_AT_512},
    "mambavision-l3-256-21k": {
        **_L3,
        **_LAYER_SCALE,
        "window_size": _WINDOW_256,
        "image_size": 256,
        "crop_pct": 1.0,
        "crop_mode": "center",
    },
    "mambavision-l3-512-21k": {**_L3, **_LAYER_SCALE, **_AT_512},
    # Not a released model: a 0.6M-parameter network for tests, with every kind of block in it.
    "mambavision-tiny-test": {
        "depths": [1, 1, 2, 2],
        "num_heads": [1, 1, 2, 2],
        "window_size": [4, 4, 4, 2],
        "dim": 16,
        "in_dim": 8,
        "drop_path_rate": 0.0,
        "image_size": 64,
        "num_labels": 10,
    },
}
"""Keyword arguments of every preset; `MambaVisionConfig.from_preset(name)` builds one."""


def native_image_size(window_size) -> int | None:
    """The input side at which one stage-4 window covers the whole stage-4 map (the map is 1/32 of the input)."""
    if isinstance(window_size, (list, tuple)) and len(window_size) == NUM_STAGES and is_positive_int(window_size[-1]):
        return 32 * window_size[-1]
    return None  # invalid window_size: reported by the validation


def _preset_key(name: str) -> str:
    """ "nvidia/MambaVision-T-1K", "MambaVision-T", "mambavision_t" → "mambavision-t"."""
    key = name.strip().lower().replace("_", "-").removeprefix("nvidia/")
    return key.removesuffix("-1k")


@strict_config
class MambaVisionConfig(BackboneConfigMixin, ScanConfig):
    r"""Configuration of a MambaVision model; the defaults build MambaVision-T (31.8M parameters).

    Args:
        depths (`list[int]`, 4 entries): blocks per stage. Stages 1-2 are ConvBlocks; in stages 3-4 the first
            ⌈depth/2⌉ blocks are Mamba mixers and the last ⌊depth/2⌋ self-attention.
        num_heads (`list[int]`, 4 entries): attention heads per stage (only stages 3-4 have attention); each must
            divide the stage width `dim * 2**i`.
        window_size (`list[int]`, 4 entries): window side per stage (only stages 3-4 use windows). At the native
            resolution a window covers the whole stage map; elsewhere the map is zero-padded to window multiples.
        dim (`int`): width of stage 1; stage i has `dim * 2**i` channels, the pooled features `8 * dim`.
        in_dim (`int`): width of the first stem convolution.
        mlp_ratio (`float`): MLP hidden width / block width in stages 3-4.
        drop_path_rate (`float`): stochastic-depth rate of the last block, linear from 0 over all blocks.
        layer_scale (`float` or `None`): initial per-channel layer scale (`gamma_1`, `gamma_2`) of stage 3-4 blocks;
            `None` for no layer scale (T, T2, S), 1e-5 for B, L, L2, L3.
        layer_scale_conv (`float` or `None`): the same for the ConvBlocks of stages 1-2 (`None` in every release).
        num_channels (`int`): input image channels (NVIDIA's `in_chans`).
        image_size (`int`): native input side (224, 256 or 512); the image processor crops to it. Default: the side
            at which the stage-4 window covers the whole map, `32 * window_size[3]` (NVIDIA's configs have no
            such field; this gives 224, 256 and 512 for their window sizes).
        qkv_bias (`bool`): bias in the attention `qkv` projection (NVIDIA: True).
        drop_rate (`float`): dropout after the MLP layers; attn_drop_rate (`float`): attention dropout.
        state_size (`int`): SSM state size N of the mixers (NVIDIA: 8).
        conv_kernel (`int`): kernel of the mixers' non-causal depthwise convolutions (NVIDIA: 3).
        expand (`int`): mixer inner width / block width (NVIDIA: 1).
        initializer_range (`float`): std of the truncated normal init of Linear weights.
        scan_backend (`str`): selective-scan path (see `validation.ScanConfig`).
        mean, std (`list[float]`): normalisation of the image processor (ImageNet by default).
        crop_pct (`float` in (0, 1]): the processor resizes to `image_size / crop_pct`, then center-crops.
        crop_mode (`str`): "center" (resize the shorter side, keep the aspect ratio) or "squash" (resize both sides).
        out_features, out_indices: stages returned by `MambaVisionBackbone`, among
            `["stem", "stage1", "stage2", "stage3", "stage4"]` (default: the last one).
        id2label, label2id, num_labels: as in transformers, but without `id2label` and `num_labels` there are 1000
            labels, and 1000 labels without a given `id2label` are named after the ImageNet-1k classes
            (`id2label[731] == "plunger, plumber's helper"`; "crane", the name of 134 and 517, maps back to 517).
    """

    model_type = "mambavision"

    depths: Ints = (1, 3, 8, 4)
    num_heads: Ints = (2, 4, 8, 16)
    window_size: Ints = (8, 8, 14, 7)
    dim: int = 80
    in_dim: int = 32
    mlp_ratio: Number = 4
    drop_path_rate: Number = 0.2
    layer_scale: Number | None = None
    layer_scale_conv: Number | None = None
    num_channels: int = 3
    image_size: int | None = None
    qkv_bias: bool = True
    drop_rate: Number = 0.0
    attn_drop_rate: Number = 0.0
    state_size: int = 8
    conv_kernel: int = 3
    expand: int = 1
    initializer_range: Number = 0.02
    mean: Numbers = IMAGENET_DEFAULT_MEAN
    std: Numbers = IMAGENET_DEFAULT_STD
    crop_pct: Number = 1.0
    crop_mode: CropMode = "center"
    _out_features: list[str] | None = None
    _out_indices: list[int] | None = None

    def __post_init__(self, **kwargs):
        for name in ("depths", "num_heads", "window_size", "mean", "std"):
            setattr(self, name, list(getattr(self, name)))  # JSON's lists, whatever was given
        if self.image_size is None:
            self.image_size = native_image_size(self.window_size)
        self.stage_names = ["stem"] + [f"stage{index}" for index in range(1, NUM_STAGES + 1)]
        self.set_output_features_output_indices(
            out_features=kwargs.pop("out_features", None), out_indices=kwargs.pop("out_indices", None)
        )
        names_given = self.id2label is not None
        if not names_given and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 1000  # NVIDIA's num_classes; their L-1K config.json has no id2label
        super().__post_init__(**kwargs)
        if not names_given and self.num_labels == len(IMAGENET_1K_LABELS):
            self._name_labels_after_imagenet()

    def _name_labels_after_imagenet(self) -> None:
        """NVIDIA's 1K checkpoints are ImageNet-1k heads whose `config.json` has no `id2label`: name their classes."""
        self.id2label = dict(enumerate(IMAGENET_1K_LABELS))
        self.label2id = {name: index for index, name in self.id2label.items()}

    # ------------------------------------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MambaVisionConfig":
        """The configuration of a released variant (or "mambavision-tiny-test"), with optional overrides.

        `name` is a key of `PRESETS` ("mambavision-t", "mambavision-l2-512-21k", ...) or a Hub-style name such as
        "nvidia/MambaVision-T-1K" or "MambaVision-B-21K" (case and a trailing "-1K" are ignored).
        """
        key = _preset_key(name)
        if key not in PRESETS:
            raise ValueError(f"unknown MambaVision preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
        preset = dict(PRESETS[key])
        if "id2label" in overrides:  # the given labels decide the number of labels, not the preset's default
            preset.pop("num_labels", None)
        return cls(**{**preset, **overrides})

    # ------------------------------------------------------------------------------------ derived sizes
    @property
    def hidden_sizes(self) -> list[int]:
        """Channels of stages 1-4: `dim * 2**i`."""
        return [self.dim * 2**index for index in range(NUM_STAGES)]

    @property
    def num_features(self) -> int:
        """Channels of the pooled features and of the final BatchNorm (`8 * dim`)."""
        return self.hidden_sizes[-1]

    # ----------------------------------------------------------------------------------------- validation
    def validate_stages(self):
        for name in ("depths", "num_heads", "window_size"):
            value = getattr(self, name)
            if len(value) != NUM_STAGES:
                raise ValueError(f"{name} must have {NUM_STAGES} entries (one per stage), got {len(value)}: {value!r}")
            if not all(is_positive_int(entry) for entry in value):
                raise ValueError(f"{name} must be a list of {NUM_STAGES} positive integers, got {value!r}")
        check_positive_ints(self, "dim", "in_dim", "num_channels", "image_size", "state_size", "conv_kernel", "expand")
        for stage in (2, 3):  # only stages 3-4 have attention
            width, heads = self.dim * 2**stage, self.num_heads[stage]
            if width % heads:
                raise ValueError(
                    f"num_heads[{stage}] = {heads} must divide the stage-{stage + 1} width dim * {2**stage} = {width}"
                )

    def validate_numbers(self):
        check_positive_numbers(self, "mlp_ratio", "initializer_range")
        check_rates(self, "drop_path_rate", "drop_rate", "attn_drop_rate")
        for name in ("layer_scale", "layer_scale_conv"):
            value = getattr(self, name)
            if value is not None and not is_finite_number(value):
                raise ValueError(
                    f"{name} must be a finite number (the initial scale) or None (no layer scale), got {value!r}"
                )

    def validate_preprocessing(self):
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != self.num_channels or not all(map(is_finite_number, value)):
                raise ValueError(
                    f"{name} must be a list of {self.num_channels} finite numbers (one per channel), got {value!r}"
                )
        if not all(value > 0 for value in self.std):
            raise ValueError(f"std must be positive in every channel, got {self.std!r}")
        if not is_finite_number(self.crop_pct) or not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be a number in (0, 1], got {self.crop_pct!r}")


__all__ = ["PRESETS", "MambaVisionConfig", "native_image_size"]
