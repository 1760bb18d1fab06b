"""LoRA for every family: a `peft.LoraConfig` built from the family's preset in `registry.FAMILIES`.

    from mamba_multimodal.training import get_lora_model, lora_config_for
    model = get_lora_model(model, r=16)      # get_peft_model(model, lora_config_for(model, r=16)), preset applied

Every preset targets only `nn.Linear` layers that the models call as modules (kernels receive activations, never a
`.weight`), so every adapter gets a gradient; `tests/test_families.py` proves it for every model class of every family,
with merge == unmerged and an adapter reloaded onto the saved base == the trained model.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from torch import nn

from ..registry import family_of

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel


def lora_config_for(model: nn.Module, **overrides) -> LoraConfig:
    """The LoRA configuration of `model`'s family, fitted to this model.

    Works on any model class of any family (`MambaVisionModel`, `VLMambaForImageTextClassification`,
    `MambaForCausalLM`, ...), before `get_peft_model`.

    Args:
        model: a model of one of the registry's families.
        overrides: `LoraConfig` fields that replace the preset's (`r=16`, `init_lora_weights=False`;
            `modules_to_save=[...]` is used as given instead of the preset's list, the BatchNorms still added).

    Returns:
        a `LoraConfig` with the preset's `target_modules`, `r`, `lora_alpha` and `lora_dropout`, and as
        `modules_to_save` the preset's entries that name a module of this model (a backbone has no head), followed
        by the full name of every norm with running statistics (BatchNorm) outside them. Such a norm updates them in
        training mode even when frozen; saved with the adapter, the statistics travel with it, so the adapter
        loaded onto the saved base reproduces the trained model (its weight and bias train too, unless the preset's
        `train_statistics_norms` is False and `get_lora_model` builds the model).

    Raises:
        TypeError: an override is not a `LoraConfig` field.
        ValueError: the model belongs to no family.
    """
    from peft import LoraConfig  # here: importing peft costs seconds, and `training` serves more than LoRA

    unknown = sorted(set(overrides) - {field.name for field in dataclasses.fields(LoraConfig) if field.init})
    if unknown:
        raise TypeError(f"lora_config_for() got unknown LoraConfig field(s): {', '.join(map(repr, unknown))}")
    preset = family_of(model).lora
    modules_to_save = _saved_modules(model, overrides, preset)
    overrides.pop("modules_to_save", None)
    modules_to_save += _running_statistics_norms(model, outside=modules_to_save)
    settings = {
        "target_modules": preset.target_modules,
        "r": preset.r,
        "lora_alpha": preset.lora_alpha,
        "lora_dropout": preset.lora_dropout,
        # No task_type: PeftModelForCausalLM / ForSequenceClassification call the model with `output_attentions`,
        # which these attention-free models refuse (TypeError); the plain PeftModel passes the inputs through, and
        # `generate(pixel_values=...)` works through it as on the base model.
        "task_type": None,
        **overrides,
    }
    return LoraConfig(modules_to_save=modules_to_save or None, **settings)


def get_lora_model(model: nn.Module, **overrides) -> PeftModel:
    """`peft.get_peft_model(model, lora_config_for(model, **overrides))`, with the rest of the family's preset: where
    `train_statistics_norms` is False (VLM-Mamba: the vision tower stays frozen), the BatchNorms saved for their
    running statistics keep their weight and bias frozen, so a frozen part of the model costs no backward pass.

    Returns:
        the `PeftModel`; its trainable parameters are the adapters and the preset's `modules_to_save`.
    """
    from peft import get_peft_model

    preset = family_of(model).lora
    statistics_only = []
    if not preset.train_statistics_norms:
        statistics_only = _running_statistics_norms(model, outside=_saved_modules(model, overrides, preset))
    peft_model = get_peft_model(model, lora_config_for(model, **overrides))
    for name in statistics_only:  # PEFT's ModulesToSaveWrapper: the saved copy is trainable, the original frozen
        peft_model.base_model.model.get_submodule(name).requires_grad_(False)
    return peft_model


def _saved_modules(model: nn.Module, overrides: dict, preset) -> list[str]:
    """The modules_to_save asked for: the override as given, else the preset's entries that name a module of `model`
    (a backbone has no head)."""
    if "modules_to_save" in overrides:
        return list(overrides["modules_to_save"] or ())
    return [name for name in preset.modules_to_save if _modules_named(model, name)]


def _modules_named(model: nn.Module, name: str) -> list[str]:
    """Full names of the modules that `name` designates: the module itself or any module whose name ends in `.name`."""
    return [full for full, _ in model.named_modules() if full == name or full.endswith(f".{name}")]


def _running_statistics_norms(model: nn.Module, outside: list[str]) -> list[str]:
    """Full names of the norms with running statistics that are not inside a module `outside` already names."""
    covered = [full for name in outside for full in _modules_named(model, name)]
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._NormBase)
        and module.track_running_stats
        and not any(name == parent or name.startswith(f"{parent}.") for parent in covered)
    ]


__all__ = ["get_lora_model", "lora_config_for"]
