"""What the configurations share: their field types and choices, the `scan_backend` field, value rules, and
`strict_config`, huggingface_hub's `@strict` as this package's configs use it.

A configuration is a typed dataclass, as transformers' own (`@strict` on a `PreTrainedConfig` subclass): strict checks
each field's type on every assignment, and runs the `validate_*` methods, the rules on values and between fields,
after `__init__`. `strict_config` runs those rules after every later assignment too, undoing a refused one, and raises
ValueError with one line naming the field (strict's `StrictDataclassError` is no ValueError and spans two lines).
"""

import functools
import math
import numbers
from dataclasses import fields
from typing import Literal, get_args

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers.configuration_utils import PreTrainedConfig

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


def strict_config(cls: type) -> type:
    """`@strict` for a config class, plus: the `validate_*` rules run after every assignment of a field once the
    config is built (they relate fields, so a refused value is put back), `update({...})` changes fields that
    depend on each other together, and every refusal is a one-line ValueError."""
    cls = strict(cls)
    construct, assign = cls.__init__, cls.__setattr__
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
        try:
            construct(self, *args, **kwargs)
        except StrictDataclassError as error:
            raise ValueError(_cause(error)) from error

    def __setattr__(self, name, value):
        update(self, {name: value})

    cls.__init__, cls.__setattr__, cls.update = __init__, __setattr__, update
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
    "check_positive_ints",
    "check_positive_numbers",
    "check_rates",
    "is_finite_number",
    "is_positive_int",
    "strict_config",
]
