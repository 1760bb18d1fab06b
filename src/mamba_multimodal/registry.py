"""The model families, each described once (timm's style: adding a family is one entry here plus its files).

A `Family` names its configuration, its model class per Auto class and per training task, its processor, its LoRA
preset and a tiny configuration for tests. From this one table come:
- the Auto registration that `import mamba_multimodal` performs (`register_all`);
- the LoRA presets (`training.lora_config_for`);
- the command line's tasks (`mamba-multimodal train TASK`);
- the generic tests that run the same checks over every family (`tests/test_families.py`).

    from mamba_multimodal.registry import FAMILIES, family_of
    family_of(model).lora.target_modules        # the LoRA targets of the model's family
    FAMILIES["vlm_mamba"].tasks["vqa"]          # VLMambaForConditionalGeneration
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import MambaConfig
from transformers.configuration_utils import PreTrainedConfig

from .configuration.configuration_coupled_mamba import CoupledMambaConfig
from .configuration.configuration_mambavision import MambaVisionConfig
from .configuration.configuration_vlm_mamba import VisionMambaConfig, VLMambaConfig, VLMambaPatchConfig
from .modeling.mamba import MambaForCausalLM, MambaModel
from .modeling.modeling_coupled_mamba import CoupledMambaForSequenceClassification, CoupledMambaModel
from .modeling.modeling_mambavision import (
    MambaVisionBackbone,
    MambaVisionForImageClassification,
    MambaVisionModel,
)
from .modeling.modeling_vlm_mamba import (
    VisionMambaModel,
    VLMambaForConditionalGeneration,
    VLMambaForImageTextClassification,
    VLMambaModel,
)
from .processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from .processing.image_processing_mambavision import (
    MambaVisionImageProcessor,
    read_mambavision_configs_in_auto_image_processor,
)
from .processing.image_processing_vlm_mamba import VLMambaImageProcessor
from .processing.processing_vlm_mamba import VLMambaProcessor

# The projections of a Mamba mixer, as module names (PEFT wraps modules that are called, never `.weight`).
MAMBA_PROJECTIONS = ("in_proj", "x_proj", "dt_proj", "out_proj")


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
    """One model family: everything the package, the CLI and the generic tests need to know about it.

    auto_models: {Auto class name: model class}, registered with transformers by `register_all`.
    tasks: {CLI / training task: model class}.
    auto_processor: the Auto class the processor registers with ("AutoImageProcessor", "AutoProcessor", ...).
    configs: every config class of the family, registered with `AutoConfig` (the main one first).
    tiny_config: a config small enough for a unit test on CPU (every kind of block present).
    summary: what the family is, in a sentence or two, with its paper (the model card's opening).
    """

    name: str
    config_class: type[PreTrainedConfig]
    auto_models: dict[str, type]
    tasks: dict[str, type]
    processor_class: type | None
    auto_processor: str | None
    lora: LoraPreset
    tiny_config: Callable[[], PreTrainedConfig]
    configs: tuple[type[PreTrainedConfig], ...] = field(default=())
    register_with_auto: bool = True
    summary: str = ""

    @property
    def model_type(self) -> str:
        return self.config_class.model_type


def _tiny_mambavision() -> MambaVisionConfig:
    return MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=3)


def _tiny_coupled_mamba() -> CoupledMambaConfig:
    return CoupledMambaConfig(input_sizes={"text": 8, "audio": 4, "vision": 6}, hidden_size=16, num_hidden_layers=2)


def _tiny_vlm_mamba() -> VLMambaConfig:
    return VLMambaConfig(
        vision_config={"model_type": "vision_mamba", "image_size": 32, "patch_size": 8, "hidden_size": 16},
        text_config={"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4},
        num_labels=3,
    )


def _tiny_mamba() -> MambaConfig:
    return MambaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, state_size=4, use_mambapy=False)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="mambavision",
            config_class=MambaVisionConfig,
            auto_models={
                "AutoModel": MambaVisionModel,
                "AutoModelForImageClassification": MambaVisionForImageClassification,
                "AutoBackbone": MambaVisionBackbone,
            },
            tasks={"image-classification": MambaVisionForImageClassification},
            processor_class=MambaVisionImageProcessor,
            auto_processor="AutoImageProcessor",
            # Every Mamba mixer projection, the attention's qkv and output (`mixer.proj`: `patch_embed.proj` is an
            # nn.Identity PEFT cannot wrap) and the MLPs. The head is new for a new label set. The BatchNorms (stem,
            # conv stages, final norm) are added by `lora_config_for` by full name: "norm1"/"norm2" would also catch
            # the Mamba and attention blocks' LayerNorms, "patch_embed" the stem's convolutions.
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, "qkv", r"mixer\.proj", "fc1", "fc2"),
                modules_to_save=("head",),
            ),
            tiny_config=_tiny_mambavision,
            summary="MambaVision (Hatamizadeh & Kautz, arXiv 2407.08083): NVIDIA's hierarchical vision backbone with "
            "convolutional stages, then stages of Mamba mixers followed by self-attention blocks.",
        ),
        Family(
            name="coupled_mamba",
            config_class=CoupledMambaConfig,
            auto_models={
                "AutoModel": CoupledMambaModel,
                "AutoModelForSequenceClassification": CoupledMambaForSequenceClassification,
            },
            tasks={"sentiment": CoupledMambaForSequenceClassification},
            processor_class=CoupledMambaFeatureProcessor,
            auto_processor="AutoFeatureExtractor",
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, "projection"),
                modules_to_save=("classifier",),
            ),
            tiny_config=_tiny_coupled_mamba,
            summary="Coupled Mamba (Li et al., NeurIPS 2024, arXiv 2405.18014): one Mamba chain per modality (text, "
            "audio, vision) whose state transitions are coupled across modalities, for multimodal sentiment analysis.",
        ),
        Family(
            name="vlm_mamba",
            config_class=VLMambaConfig,
            configs=(VLMambaPatchConfig,),
            auto_models={
                "AutoModel": VLMambaModel,
                "AutoModelForImageTextToText": VLMambaForConditionalGeneration,
                "AutoModelForSequenceClassification": VLMambaForImageTextClassification,
            },
            tasks={
                "caption": VLMambaForConditionalGeneration,
                "vqa": VLMambaForConditionalGeneration,
                "image-text-classification": VLMambaForImageTextClassification,
            },
            processor_class=VLMambaProcessor,
            auto_processor="AutoProcessor",
            # The language model's mixers (LLaVA's recipe: adapt the LM, train the projector in full); the vision
            # tower stays frozen, its BatchNorms (MambaVision) saved for their statistics only, so no step
            # backpropagates through it (easy-VQA demo: 0.25 → 0.22 s a step, same accuracy). The classifier's fusion
            # MLP and score head are new for a new label set.
            lora=LoraPreset(
                target_modules=_module_pattern(*MAMBA_PROJECTIONS, under="language_model"),
                modules_to_save=("multi_modal_projector", "fusion", "score"),
                train_statistics_norms=False,
            ),
            tiny_config=_tiny_vlm_mamba,
            summary="VLM-Mamba: a vision-language model without attention in its language model: a vision encoder, "
            "a projector and a Mamba language model (LLaVA's layout; Cobra, arXiv 2403.14520), for captioning, VQA "
            "and image+text classification, generating with a constant-size recurrent state.",
        ),
        Family(
            name="vision_mamba",
            config_class=VisionMambaConfig,
            auto_models={"AutoModel": VisionMambaModel},
            tasks={},
            processor_class=None,
            auto_processor=None,
            lora=LoraPreset(target_modules=_module_pattern(*MAMBA_PROJECTIONS)),
            tiny_config=lambda: VisionMambaConfig(image_size=32, patch_size=8, hidden_size=16),
            summary="VisionMamba (Vim, Zhu et al., arXiv 2401.09417): an attention-free image encoder of "
            "bidirectional Mamba blocks over image patches.",
        ),
        Family(
            # The core's Mamba LM: transformers' own "mamba" model type, so not registered over transformers'
            # classes; here for its LoRA preset and the generic tests.
            name="mamba",
            config_class=MambaConfig,
            auto_models={"AutoModel": MambaModel, "AutoModelForCausalLM": MambaForCausalLM},
            tasks={},
            processor_class=None,
            auto_processor=None,
            # Not out_proj: PEFT refuses out_proj/conv1d targets on model_type "mamba" (a guard written for
            # transformers' CUDA path, which hands out_proj.weight to a kernel), although this package's mixer calls it.
            lora=LoraPreset(target_modules=_module_pattern("in_proj", "x_proj", "dt_proj")),
            tiny_config=_tiny_mamba,
            register_with_auto=False,
        ),
    )
}


def tasks() -> dict[str, Family]:
    """{training task: the family that serves it}, over every family."""
    return {task: family for family in FAMILIES.values() for task in family.tasks}


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
    """Registers every family's configs, models and processor with transformers' Auto classes."""
    import transformers

    # From its module: transformers 5.17's top-level `AutoImageProcessor` (and the lazy `transformers.models.auto`
    # attribute) is a placeholder that demands torchvision; the class itself works without it.
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    for family in FAMILIES.values():
        if not family.register_with_auto:
            continue
        for config_class in (family.config_class, *family.configs):
            transformers.AutoConfig.register(config_class.model_type, config_class)
        for auto_name, model_class in family.auto_models.items():
            getattr(transformers, auto_name).register(family.config_class, model_class)
        if family.auto_processor == "AutoImageProcessor":
            AutoImageProcessor.register(family.config_class, slow_image_processor_class=family.processor_class)
        elif family.auto_processor is not None:
            getattr(transformers, family.auto_processor).register(family.config_class, family.processor_class)
    # VLMambaProcessor's image processor, for AutoImageProcessor on a VLM-Mamba folder.
    AutoImageProcessor.register(VLMambaConfig, slow_image_processor_class=VLMambaImageProcessor)
    # NVIDIA's MambaVision repositories keep their preprocessing in config.json, which the Auto lookup never reads.
    read_mambavision_configs_in_auto_image_processor()


__all__ = ["FAMILIES", "MAMBA_PROJECTIONS", "Family", "LoraPreset", "family_of", "register_all", "tasks"]
