"""Validation shared by the configurations: value checks, and validation on assignment.

A configuration checks every field at the end of its `__init__` (`_validate_fields`). `ValidatedOnAssignment` runs the
same check whenever one of those fields is assigned later, directly (`config.pooling = "max"`), through
`config.update({...})` or through `from_pretrained(path, pooling="max")`, and puts the old values back when it fails,
so a configuration never holds a value its model would misread. Fields that constrain each other (`num_channels` and
`mean`, `time_step_min` and `time_step_max`) change together in one `update`.
"""

from __future__ import annotations

import inspect
import math
import numbers

from huggingface_hub.errors import StrictDataclassError


def is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def is_finite_number(value) -> bool:
    """A real number other than a bool, NaN or ±inf."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class ValidatedOnAssignment:
    """Mixin for a `PreTrainedConfig` subclass whose `__init__` sets every field, then calls `_validate_fields()`.

    The validated fields are the parameters of the subclass's `__init__`, plus those its class body names in
    `validated_fields` (transformers' own fields that it has rules for). Their first assignment is `__init__`'s own (it
    validates them all at its end); every later one is validated at once. transformers builds a loaded config through
    `__init__` too (`from_dict`), then assigns the caller's overrides: those are validated.
    """

    validated_fields: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        parameters = inspect.signature(cls.__init__).parameters.values()
        named = {p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
        cls.validated_fields = frozenset(cls.__dict__.get("validated_fields", ())) | named

    def _validate_fields(self) -> None:
        raise NotImplementedError

    def __setattr__(self, name, value):
        if self._is_set_validated_field(name):
            self._assign_validated({name: value})
        else:
            super().__setattr__(name, value)

    def update(self, config_dict: dict) -> None:
        """Sets several attributes at once; the validated fields among them are checked together, after all are set,
        and none changes if the check fails."""
        validated = {name: value for name, value in config_dict.items() if self._is_set_validated_field(name)}
        for name, value in config_dict.items():
            if name not in validated:
                super().__setattr__(name, value)
        self._assign_validated(validated)

    def _is_set_validated_field(self, name: str) -> bool:
        return name in self.validated_fields and name in vars(self)  # not in vars: __init__ is still setting it

    def _assign_validated(self, changes: dict) -> None:
        previous = {name: vars(self)[name] for name in changes}
        try:
            for name, value in changes.items():
                super().__setattr__(name, value)  # transformers type-checks its own fields here (5.17: problem_type)
            self._validate_fields()
        except Exception as error:
            for name, value in previous.items():
                super().__setattr__(name, value)
            if isinstance(error, ValueError) and any(name in str(error) for name in changes):
                raise  # it names the field, the value and what is allowed
            if not isinstance(error, (ValueError, TypeError, StrictDataclassError)):
                raise
            assigned = ", ".join(f"{name}={value!r}" for name, value in changes.items())
            if isinstance(error, ValueError):  # a rule between fields
                hint = "change them together with config.update({...})"
                message = f"{assigned} conflicts with the other fields: {error}; {hint}"
            else:
                message = f"{assigned} is refused: {error}"
            raise ValueError(message) from error


__all__ = ["ValidatedOnAssignment", "is_finite_number", "is_positive_int"]
