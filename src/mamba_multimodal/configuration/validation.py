"""What the configurations share: their field types and choices, the `scan_backend` field, value rules, and
`strict_config`, huggingface_hub's `@strict` as this package's configs use it.

A configuration is a typed dataclass, as transformers' own (`@strict` on a `PreTrainedConfig` subclass): strict checks
each field's type on every assignment, and runs the `validate_*` methods, the rules on values and between fields,
after `__init__`. `strict_config` runs those rules after every later assignment too, undoing a refused one, and raises
ValueError with one line naming the field (strict's `StrictDataclassError` is no ValueError and spans two lines).
It also refuses a keyword that no field knows (`coupling` mistyped `cupling`), which transformers' `PreTrainedConfig`
would keep as an unused attribute; a `config.json` being loaded (`from_pretrained`, `from_dict`) gets a warning
naming such keys instead, so that a folder written by another version still loads.
"""

import contextvars
import difflib
import functools
import math
import numbers
from dataclasses import fields
from typing import Literal, get_args

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import GenerationConfig
from transformers.configuration_utils import PreTrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

ScanBackend = Literal["auto", "cuda", "cpu", "pytorch", "reference"]
Coupling = Literal["sum", "mean", "none"]
SCAN_BACKENDS = get_args(ScanBackend)  # the paths of modeling/ssm.py (its BACKENDS), which reads them here
COUPLINGS = get_args(Coupling)  # modeling/ssm_coupled.py reads them here
Number = float | int  # 4 for 4.0 is fine; a bool is refused by the rules below
Numbers = list[Number] | tuple[Number, ...]
Ints = list[int] | tuple[int, ...]


class ScanConfig(PreTrainedConfig):
    r"""The field of every configuration whose model runs a selective scan.

    Args:
        scan_backend (`str`): selective-scan path, one of "auto", "cuda", "cpu", "pytorch", "reference" (see
            `modeling/ssm.py`; "pytorch" forces the traceable plain-PyTorch path, e.g. for ONNX export).
    """

    scan_backend: ScanBackend = "auto"


def is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def is_finite_number(value) -> bool:
    """A real number other than a bool, NaN or ±inf."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_positive_ints(config, *names: str) -> None:
    for name in names:
        if not is_positive_int(value := getattr(config, name)):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_positive_numbers(config, *names: str) -> None:
    for name in names:
        if not is_finite_number(value := getattr(config, name)) or value <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")


def check_rates(config, *names: str) -> None:
    """Dropout-like probabilities, in [0, 1)."""
    for name in names:
        if not is_finite_number(value := getattr(config, name)) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


# Keywords that transformers' `PreTrainedConfig` takes besides its fields: those its `__post_init__` and `from_dict`
# pop, those `save_pretrained` writes, and those of configs saved by transformers 4 that it still accepts.
TRANSFORMERS_KEYWORDS = frozenset({
    "num_labels", "torch_dtype", "name_or_path", "_name_or_path", "_commit_hash", "output_attentions",
    "attn_implementation", "experts_implementation", "per_layer_config", "rope_scaling", "rope_theta", "model_type",
    "auto_map", "transformers_version", "_attn_implementation", "_attn_implementation_internal",
    "_experts_implementation", "_experts_implementation_internal", "torchscript", "use_bfloat16", "tf_legacy_loss",
    "pruned_heads", "tie_encoder_decoder", "is_decoder", "add_cross_attention", "cross_attention_hidden_size",
    "finetuning_task", "tokenizer_class", "prefix", "bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id",
    "decoder_start_token_id", "task_specific_params", "use_return_dict",
})  # fmt: skip
# Keys that published config.json files carry besides the fields, read by nothing here: mamba_ssm's names in
# state-spaces/mamba-*-hf. Loading such a file keeps them quietly, as transformers does; a new config refuses them.
PUBLISHED_EXTRAS = frozenset({"d_model", "d_inner", "n_layer", "ssm_cfg", "rms_norm", "fused_add_norm",
                              "pad_vocab_size_multiple"})  # fmt: skip
_loading = contextvars.ContextVar("loading a saved config", default=False)


@functools.cache
def _known_keywords(cls: type) -> frozenset:
    """Keywords that set something on `cls`: its fields, the attributes its `__post_init__` sets (transformers'
    `MambaConfig` writes `intermediate_size`, and reads it back), settable properties and transformers' own."""
    generation = GenerationConfig._get_default_generation_params()
    settable = {name for name in dir(cls) if isinstance(getattr(cls, name, None), property) and getattr(cls, name).fset}
    attributes = vars(cls())  # no keywords: no recursion
    return frozenset({field.name for field in fields(cls)} | settable | set(attributes) | set(generation))


def check_keywords(cls: type, kwargs: dict) -> None:
    """Raises ValueError naming the first keyword of `kwargs` that sets nothing on `cls` (or, while a saved config is
    being loaded, warns naming them all), with the closest field name."""
    unknown = [name for name in kwargs if name not in TRANSFORMERS_KEYWORDS and name not in _known_keywords(cls)]
    if not unknown:
        return
    messages = [_unknown_keyword(cls, name) for name in unknown]
    if not _loading.get():
        raise ValueError(messages[0])
    messages = [message for name, message in zip(unknown, messages, strict=True) if name not in PUBLISHED_EXTRAS]
    if messages:
        logger.warning(f"{cls.__name__}: kept as plain attributes, read by nothing: {'; '.join(messages)}")


def known_settings(cls: type, settings: dict) -> dict:
    """`settings` without the keys that set nothing on `cls`: a loaded config's `to_dict()` keeps what its config.json
    held besides the fields (state-spaces' `d_model`, `n_layer`, `ssm_cfg`, ...), which a new config would refuse."""
    known = TRANSFORMERS_KEYWORDS | _known_keywords(cls)
    return {name: value for name, value in settings.items() if name in known}


def _unknown_keyword(cls: type, name: str) -> str:
    derived = getattr(cls, name, None)
    if isinstance(derived, property):  # read-only, as `image_seq_length`
        summary = (derived.__doc__ or "").strip().splitlines()[0].strip() if derived.__doc__ else ""
        return f"{name} is derived from the other fields, not set{f' ({summary})' if summary else ''}"
    names = [key for key in _known_keywords(cls) if not key.startswith("_")]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"{name} is not a field of {cls.__name__}{f'; did you mean {close[0]!r}?' if close else ''}"


def strict_config(cls: type) -> type:
    """`@strict` for a config class, plus: the `validate_*` rules run after every assignment of a field once the
    config is built (they relate fields, so a refused value is put back), `update({...})` changes fields that
    depend on each other together, a keyword no field knows is refused (`check_keywords`), and every refusal is a
    one-line ValueError."""
    cls = strict(cls)
    construct, assign, load = cls.__init__, cls.__setattr__, cls.from_dict.__func__
    field_names = {field.name for field in fields(cls)}

    def update(self, changes: dict) -> None:
        previous = {name: vars(self)[name] for name in changes if name in vars(self)}
        try:
            for name, value in changes.items():
                assign(self, name, value)
            if "_name_or_path" in vars(self) and field_names & changes.keys():  # built: PreTrainedConfig named it
                self.validate()
        except Exception as error:
            for name, value in previous.items():
                assign(self, name, value)
            if not isinstance(error, StrictDataclassError):
                raise
            message = _cause(error)
            if not any(name in message for name in changes):  # a rule between fields, broken on another field
                assigned = ", ".join(f"{name}={value!r}" for name, value in changes.items())
                hint = "change them together with config.update({...})"
                message = f"{assigned} conflicts with the other fields: {message}; {hint}"
            raise ValueError(message) from error

    @functools.wraps(construct)
    def __init__(self, *args, **kwargs):
        check_keywords(type(self), kwargs)
        try:
            construct(self, *args, **kwargs)
        except StrictDataclassError as error:
            raise ValueError(_cause(error)) from error

    def __setattr__(self, name, value):
        update(self, {name: value})

    @functools.wraps(load)
    def from_dict(cls, config_dict, **kwargs):
        reset = _loading.set(True)  # sub-configs built from the dict too
        try:
            return load(cls, config_dict, **kwargs)
        finally:
            _loading.reset(reset)

    cls.__init__, cls.__setattr__, cls.update, cls.from_dict = __init__, __setattr__, update, classmethod(from_dict)
    return cls


def _cause(error: StrictDataclassError) -> str:
    """strict's error says "Validation error for field 'x':" and, on a second line, its cause, which names the field
    too: its type check's "Field 'x' expected int, got str", or our rule's "x must be ..."."""
    return str(error.__cause__ or error)


__all__ = [
    "COUPLINGS",
    "SCAN_BACKENDS",
    "Coupling",
    "Ints",
    "Number",
    "Numbers",
    "ScanBackend",
    "ScanConfig",
    "check_keywords",
    "check_positive_ints",
    "check_positive_numbers",
    "check_rates",
    "is_finite_number",
    "is_positive_int",
    "strict_config",
]
