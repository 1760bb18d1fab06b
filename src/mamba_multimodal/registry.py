"""The model families, each described once as data (timm's style: adding a family is one entry here plus its files).

A `Family` names its classes as strings, dotted paths inside this package ("modeling.modeling_mambavision.
MambaVisionModel") or in transformers ("transformers.MambaConfig"), resolved on first use as transformers'
`_LazyAutoMapping` resolves `MODEL_MAPPING_NAMES`: this module imports no module of the package, so anything may read
the table. Each entry also holds the family's facts: pipeline tags, licence rule, LoRA preset, tiny test configs.
From this one table come:
- the Auto registration that `import mamba_multimodal` performs (`register_all`);
- the remote-code bundle, `auto_map` and model card (`mamba_multimodal.sharing`);
- the LoRA presets (`training.lora_config_for`);
- the generic tests that run the same checks over every family (`tests/test_families.py`).

    from mamba_multimodal.registry import FAMILIES, family_of
    family_of(model).lora.target_modules        # the LoRA targets of the model's family
    FAMILIES["vlm_mamba"].config_class          # VLMambaConfig (imported on this first use)

The training tasks, each naming its family and model class, are another table: `training.tasks.TASKS`.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field

PACKAGE = __name__.rpartition(".")[0]  # "mamba_multimodal"
APACHE_LICENSE = {"license": "apache-2.0"}
NVIDIA_LICENSE = {"license": "other", "license_name": "nvclv1"}  # NVIDIA's MambaVision weights: non-commercial

# The projections of a Mamba mixer, as module names (PEFT wraps modules that are called, never `.weight`).
MAMBA_PROJECTIONS = ("in_proj", "x_proj", "dt_proj", "out_proj")


def resolve(path: str):
    """The object a registry path names: "modeling.mamba.MambaModel" inside this package, "transformers.X" in
    transformers (importing its module on first use)."""
    module, _, name = path.rpartition(".")
    if module.split(".")[0] != "transformers":
        module = f"{PACKAGE}.{module}"
    return getattr(importlib.import_module(module), name)


def _module_pattern(*names: str, under: str = "") -> str:
    """A PEFT `target_modules` regex (matched against the full module name) for modules named `names`, optionally
    only below a module whose name matches `under`."""
    prefix = rf"(?:.*\.)?{under}\.(?:.*\.)?" if under else r"(?:.*\.)?"
    return rf"{prefix}(?:{'|'.join(names)})"


@dataclass(frozen=True)
class LoraPreset:
    """A family's LoRA defaults (`peft.LoraConfig` fields).

    target_modules: a regex over full module names that matches only `nn.Linear` layers PEFT wraps.
    modules_to_save: modules trained in full and saved with the adapter (task heads, projectors); entries that name
        no module of a given model are left out, and `training.lora_config_for` adds every BatchNorm, whose running
        statistics move in training, so that an adapter reloaded onto the saved base reproduces the trained model.
    train_statistics_norms: whether those added BatchNorms also train their weight and bias. False
        (`training.get_lora_model`): they travel with the adapter for their statistics only, and the frozen part of
        the model that holds them costs no backward pass.
    """

    target_modules: str
    modules_to_save: tuple[str, ...] = ()
    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    train_statistics_norms: bool = True


@dataclass(frozen=True)
class Family:
    """One model family: everything the package, the CLI and the tests need to know about it, as data.

    Class paths are resolved on use, so the properties below yield classes:
    config_name: the main config class (`config_class`); extra_config_names: the family's other registered configs
        (`configs`).
    model_names: {Auto class name: model class} (`auto_models`), registered with transformers by `register_all`.
    processor_names: {Auto class name: processor class}, the family's own processor first (`processor_class`,
        `auto_processor`); a later entry registers one more processor for the config (VLM-Mamba's image processor).
    tiny: keyword arguments of a config small enough for a unit test on CPU (every kind of block present);
        variants: {name: keyword arguments replacing some of `tiny`} (`tiny_config(variant)`).
    pipeline_tags: {Auto class name: the pipeline it serves}, the model card's `pipeline_tag`; `vision` families'
        other classes serve "image-feature-extraction".
    base_model_licenses: {Hub id prefix of a base model: its licence fields}; APACHE_LICENSE otherwise.
    on_register: a function called by `register_all` after the Auto registration.
    register_with_auto: False for a model type transformers owns (the Mamba LM): no registration, no remote code.
    summary: what the family is, in a sentence or two, with its paper (the model card's opening).
    """

    name: str
    model_type: str
    config_name: str
    model_names: dict[str, str]
    lora: LoraPreset
    tiny: dict
    processor_names: dict[str, str] = field(default_factory=dict)
    extra_config_names: tuple[str, ...] = ()
    variants: dict[str, dict] = field(default_factory=dict)
    pipeline_tags: dict[str, str] = field(default_factory=dict)
    vision: bool = False
    base_model_licenses: dict[str, dict] = field(default_factory=dict)
    on_register: str | None = None
    register_with_auto: bool = True
    summary: str = ""

    @property
    def config_class(self) -> type:
        return resolve(self.config_name)

    @property
    def configs(self) -> tuple[type, ...]:
        return tuple(map(resolve, self.extra_config_names))

    @property
    def auto_models(self) -> dict[str, type]:
        return {auto: resolve(path) for auto, path in self.model_names.items()}

    @property
    def processor_class(self) -> type | None:
        return resolve(next(iter(self.processor_names.values()))) if self.processor_names else None

    @property
    def auto_processor(self) -> str | None:
        return next(iter(self.processor_names), None)

    def tiny_config(self, variant: str | None = None):
        """A fresh tiny config (`tiny`, with the named variant's changes)."""
        changes = self.variants[variant] if variant is not None else {}
        return self.config_class(**copy.deepcopy({**self.tiny, **changes}))

    def pipeline_tag(self, auto_class: str) -> str | None:
        return self.pipeline_tags.get(auto_class) or ("image-feature-extraction" if self.vision else None)

    def license_for(self, base_model: str | None) -> dict:
        """The model card's licence fields for a model fine-tuned from `base_model` (a Hub id, or None)."""
        prefix = next((p for p in self.base_model_licenses if str(base_model or "").startswith(p)), None)
        return self.base_model_licenses[prefix] if prefix is not None else APACHE_LICENSE


_MAMBAVISION_TINY = {
    "depths": [1, 1, 2, 2], "num_heads": [1, 1, 2, 2], "window_size": [4, 4, 4, 2], "dim": 16, "in_dim": 8,
    "drop_path_rate": 0.0, "image_size": 64, "num_labels": 3,
}  # fmt: skip
_MAMBA_TINY = {"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4, "use_mambapy": False}
_VISION_MAMBA_TINY = {"image_size": 32, "patch_size": 8, "hidden_size": 16}

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="mambavision",
            model_type="mambavision",
            config_name="configuration.configuration_mambavision.MambaVisionConfig",
            model_names={
                "AutoModel": "modeling.modeling_mambavision.MambaVisionModel",
                "AutoModelForImageClassification": "modeling.modeling_mambavision.MambaVisionForImageClassification",
                "AutoBackbone": "modeling.modeling_mambavision.MambaVisionBackbone",
            },
            processor_names={"AutoImageProcessor": "processing.image_processing_mambavision.MambaVisionImageProcessor"},
            # NVIDIA's MambaVision repositories keep their preprocessing in config.json, which the Auto lookup never
            # reads.
            on_register="processing.image_processing_mambavision.read_mambavision_configs_in_auto_image_processor",
            # Every Mamba mixer projection, the attention's qkv and output (`mixer.proj`: `patch_embed.proj` is an
            # nn.Identity PEFT cannot wrap) and the MLPs. The head is new for a new label set. The BatchNorms (stem,
            # conv stages, final norm) are added by `lora_config_for` by full name: "norm1"/"norm2" would also catch
            # the Mamba and attention blocks' LayerNorms, "patch_embed" the stem's convolutions.
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, "qkv", r"mixer\.proj", "fc1", "fc2"),
                modules_to_save=("head",),
            ),
            tiny=_MAMBAVISION_TINY,  # = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=3)
            variants={"layer-scale": {"layer_scale": 1e-2, "layer_scale_conv": 1e-2}},
            pipeline_tags={"AutoModelForImageClassification": "image-classification"},
            vision=True,
            base_model_licenses={"nvidia/": NVIDIA_LICENSE},
            summary="MambaVision (Hatamizadeh & Kautz, arXiv 2407.08083): NVIDIA's hierarchical vision backbone with "
            "convolutional stages, then stages of Mamba mixers followed by self-attention blocks.",
        ),
        Family(
            name="coupled_mamba",
            model_type="coupled_mamba",
            config_name="configuration.configuration_coupled_mamba.CoupledMambaConfig",
            model_names={
                "AutoModel": "modeling.modeling_coupled_mamba.CoupledMambaModel",
                "AutoModelForSequenceClassification": (
                    "modeling.modeling_coupled_mamba.CoupledMambaForSequenceClassification"
                ),
            },
            processor_names={
                "AutoFeatureExtractor": "processing.feature_processing_coupled_mamba.CoupledMambaFeatureProcessor"
            },
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, "projection"),
                modules_to_save=("classifier",),
            ),
            tiny={"input_sizes": {"text": 8, "audio": 4, "vision": 6}, "hidden_size": 16, "num_hidden_layers": 2},
            variants={
                "mean-max-weighted": {"coupling": "mean", "pooling": "max", "fusion": "weighted", "num_labels": 3},
            },
            summary="Coupled Mamba (Li et al., NeurIPS 2024, arXiv 2405.18014): one Mamba chain per modality (text, "
            "audio, vision) whose state transitions are coupled across modalities, for multimodal sentiment analysis.",
        ),
        Family(
            name="vlm_mamba",
            model_type="vlm_mamba",
            config_name="configuration.configuration_vlm_mamba.VLMambaConfig",
            extra_config_names=("configuration.configuration_vlm_mamba.VLMambaPatchConfig",),
            model_names={
                "AutoModel": "modeling.modeling_vlm_mamba.VLMambaModel",
                "AutoModelForImageTextToText": "modeling.modeling_vlm_mamba.VLMambaForConditionalGeneration",
                "AutoModelForSequenceClassification": "modeling.modeling_vlm_mamba.VLMambaForImageTextClassification",
            },
            processor_names={
                "AutoProcessor": "processing.processing_vlm_mamba.VLMambaProcessor",
                # VLMambaProcessor's image processor, for AutoImageProcessor on a VLM-Mamba folder.
                "AutoImageProcessor": "processing.image_processing_vlm_mamba.VLMambaImageProcessor",
            },
            # The language model's mixers (LLaVA's recipe: adapt the LM, train the projector in full); the vision
            # tower stays frozen, its BatchNorms (MambaVision) saved for their statistics only, so no step
            # backpropagates through it (easy-VQA demo: 0.25 → 0.22 s a step, same accuracy). The classifier's fusion
            # MLP and score head are new for a new label set.
            on_register="processing.pipeline_vlm_mamba.strip_answer_separator_in_the_pipeline",
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, under="language_model"),
                modules_to_save=("multi_modal_projector", "fusion", "score"),
                train_statistics_norms=False,
            ),
            tiny={
                "vision_config": {"model_type": "vision_mamba", **_VISION_MAMBA_TINY},
                "text_config": {k: v for k, v in _MAMBA_TINY.items() if k != "use_mambapy"},
                "num_labels": 3,
            },
            variants={
                "mambavision-tower": {"vision_config": {"model_type": "mambavision", **_MAMBAVISION_TINY}},
                "patch-tower": {"vision_config": {"model_type": "vlm_mamba_patch", "image_size": 32, "patch_size": 8}},
                "conv-stem": {"vision_config": {"model_type": "vision_mamba", **_VISION_MAMBA_TINY, "stem": "conv"}},
            },
            pipeline_tags={"AutoModelForImageTextToText": "image-text-to-text"},
            base_model_licenses={"nvidia/": NVIDIA_LICENSE},  # fine-tuned from a VLM with NVIDIA's MambaVision tower
            summary="VLM-Mamba: a vision-language model without attention in its language model: a vision encoder, "
            "a projector and a Mamba language model (LLaVA's layout; Cobra, arXiv 2403.14520), for captioning, VQA "
            "and image+text classification, generating with a constant-size recurrent state.",
        ),
        Family(
            name="vision_mamba",
            model_type="vision_mamba",
            config_name="configuration.configuration_vision_mamba.VisionMambaConfig",
            model_names={"AutoModel": "modeling.modeling_vision_mamba.VisionMambaModel"},
            lora=LoraPreset(target_modules=_module_pattern(*MAMBA_PROJECTIONS)),
            tiny=_VISION_MAMBA_TINY,
            vision=True,
            summary="VisionMamba (Vim, Zhu et al., arXiv 2401.09417): an attention-free image encoder of "
            "bidirectional Mamba blocks over image patches.",
        ),
        Family(
            # The core's Mamba LM: transformers' own "mamba" model type, so not registered over transformers'
            # classes; here for its LoRA preset and the generic tests. Its config: transformers' plus scan_backend.
            name="mamba",
            model_type="mamba",
            config_name="configuration.configuration_mamba.MambaConfig",
            model_names={
                "AutoModel": "modeling.mamba.MambaModel",
                "AutoModelForCausalLM": "modeling.mamba.MambaForCausalLM",
            },
            # Not out_proj: PEFT refuses out_proj/conv1d targets on model_type "mamba" (a guard written for
            # transformers' CUDA path, which hands out_proj.weight to a kernel), although this package's mixer calls it.
            lora=LoraPreset(target_modules=_module_pattern("in_proj", "x_proj", "dt_proj")),
            tiny=_MAMBA_TINY,
            register_with_auto=False,
        ),
    )
}


def family_of(model_or_config) -> Family:
    """The family of a model (a PEFT-wrapped one too) or a config, by its model_type.

    Raises:
        ValueError: the model_type is not one of this package's families.
    """
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES.values():
        if family.model_type == model_type:
            return family
    known = ", ".join(sorted(family.model_type for family in FAMILIES.values()))
    raise ValueError(f"no mamba_multimodal family has model_type {model_type!r}; the families are: {known}")


def register_all() -> None:
    """Registers every family's configs, models and processors with transformers' Auto classes (importing them)."""
    import transformers

    # From its module: transformers 5.17's top-level `AutoImageProcessor` (and the lazy `transformers.models.auto`
    # attribute) is a placeholder that demands torchvision; the class itself works without it.
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    for family in FAMILIES.values():
        if not family.register_with_auto:
            continue
        config_class = family.config_class
        for registered in (config_class, *family.configs):
            transformers.AutoConfig.register(registered.model_type, registered)
        for auto_name, model_class in family.auto_models.items():
            getattr(transformers, auto_name).register(config_class, model_class)
        for auto_name, path in family.processor_names.items():
            if auto_name == "AutoImageProcessor":
                AutoImageProcessor.register(config_class, slow_image_processor_class=resolve(path))
            else:
                getattr(transformers, auto_name).register(config_class, resolve(path))
        if family.on_register is not None:
            resolve(family.on_register)()
    use_installed_code_without_asking()


# transformers' modules that ask `resolve_trust_remote_code` whether to run a folder's code (each imported it by name).
_ASKING_MODULES = ("configuration_auto", "feature_extraction_auto", "image_processing_auto", "processing_auto",
                   "tokenization_auto", "video_processing_auto", "auto_factory")  # fmt: skip


def use_installed_code_without_asking() -> None:
    """A folder this package saved carries its code bundle and `auto_map` (for machines without the package). Where
    transformers finds no registered class for a kind of processor the folder has none of (a video processor for
    MambaVision, an image processor for Coupled Mamba's features), it derives one from `auto_map` and asks "Do you
    wish to run the custom code? [y/N]", blocking 15 s in a terminal, then goes on without it. With the package
    installed the bundle holds nothing the registered classes lack, so for a folder of one of its families the
    answer is "no" without asking (transformers' `trust_remote_code=False`: its callers go on as after a "no").
    An explicit `trust_remote_code` is left alone. Idempotent."""
    import transformers.dynamic_module_utils as dynamic

    asking = dynamic.resolve_trust_remote_code
    if getattr(asking, "answers_for_installed_families", False):
        return

    def resolve_trust_remote_code(trust_remote_code, model_name, has_local_code, has_remote_code, *args, **kwargs):
        if trust_remote_code is None and has_remote_code and not has_local_code and _is_own_folder(model_name):
            trust_remote_code = False
        return asking(trust_remote_code, model_name, has_local_code, has_remote_code, *args, **kwargs)

    resolve_trust_remote_code.answers_for_installed_families = True
    dynamic.resolve_trust_remote_code = resolve_trust_remote_code
    for name in _ASKING_MODULES:
        module = importlib.import_module(f"transformers.models.auto.{name}")
        if getattr(module, "resolve_trust_remote_code", None) is asking:
            module.resolve_trust_remote_code = resolve_trust_remote_code


def _is_own_folder(model_name) -> bool:
    """Whether the `config.json` of a local folder, or of a Hub repository already in the cache, has the model_type
    of one of the families (never downloads)."""
    import json
    import os

    from huggingface_hub import try_to_load_from_cache

    try:
        if os.path.isdir(model_name):
            path = os.path.join(model_name, "config.json")
        else:
            path = try_to_load_from_cache(str(model_name), "config.json")
        if not isinstance(path, str) or not os.path.isfile(path):
            return False
        with open(path, encoding="utf-8") as file:
            model_type = json.load(file).get("model_type")
    except (OSError, ValueError, TypeError):
        return False  # not a folder or repository id, unreadable: transformers decides as before
    return any(family.model_type == model_type for family in FAMILIES.values())


__all__ = [
    "APACHE_LICENSE",
    "FAMILIES",
    "MAMBA_PROJECTIONS",
    "NVIDIA_LICENSE",
    "Family",
    "LoraPreset",
    "family_of",
    "register_all",
    "resolve",
    "use_installed_code_without_asking",
]
