"""The tasks of `mamba-multimodal train` / `evaluate`, one `Task` entry each: the launcher's task list, each task's
`--help`, its recipes, its builder and its scorer all follow from `TASKS`.

A new task is one entry here and its builder (and a scorer, unless an existing one fits):

    builder(task, model_args, data_args, evaluate_only) -> arguments.TaskRun     (model, processor, data, collator)
    scorer(run, trainer, data_args) -> {metric: value}                            (the final metric table)

both named "module:function" under `mamba_multimodal.training` and imported when a run needs them. This file imports
the standard library only: the launcher (`mamba_multimodal_cli`) reads it for `--help` without torch.
"""

from __future__ import annotations

import importlib
import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    note: str  # what it is, for the task's --help and the setup block
    values: dict = field(default_factory=dict)  # TrainingArguments fields over the task's `training` values
    # `global_batch_size` (not a TrainingArguments field) is split over the processes and accumulation steps.
    frozen: tuple[str, ...] = ()  # the model's parts (module names, e.g. "vision_tower") kept as they are
    bf16_on_gpu: bool = False  # bf16 mixed precision where a GPU supports it (not on a CPU, where it is slower)


@dataclass(frozen=True)
class Task:
    name: str
    about: str  # one line, for the launcher's task list
    family: str  # the `registry.FAMILIES` entry of its model
    model_class: str  # the class it trains, a `mamba_multimodal` attribute
    builder: str  # "module:function", see the module docstring
    scorer: str
    data: str  # the forms --dataset takes
    default_dataset: str | None  # None: --dataset is required
    recipes: dict[str, Recipe]
    training: str | None = None  # "module:function": data_args -> what the recipes start from (None: COMMON_TRAINING)
    extras: tuple[str, ...] = ()  # the pyproject extras its scorer imports (checked before a run starts)

    def load(self, name: str):
        """`self.builder`, `self.scorer` or `self.training` imported; "model_class": the model class."""
        if name == "model_class":
            return getattr(importlib.import_module("mamba_multimodal"), self.model_class)
        module, _, function = getattr(self, name).partition(":")
        return getattr(importlib.import_module(f"mamba_multimodal.training.{module}"), function)

    def help(self) -> str:
        recipes = "\n".join(textwrap.fill(recipe.note, 100, initial_indent=f"  {name}: ", subsequent_indent="    ")
                            for name, recipe in self.recipes.items())  # fmt: skip
        default = f" (default: {self.default_dataset})" if self.default_dataset else " (required)"
        return f"{self.name}: {self.about}\n\n--dataset: {self.data}{default}\n\n--recipe:\n{recipes}"


COMMON_TRAINING = {"lr_scheduler_type": "cosine", "warmup_steps": 0.03, "weight_decay": 0.01, "logging_steps": 10,
                   "eval_strategy": "epoch", "remove_unused_columns": False, "per_device_eval_batch_size": 64,
                   "seed": 0,
                   # A checkpoint every save_steps (each recipe sets them to a minute or two of its steps) and at the
                   # end, the newest kept: what --resume_from_checkpoint True resumes after an interruption.
                   "save_strategy": "steps", "save_steps": 200, "save_total_limit": 1}  # fmt: skip


_MAMBAVISION_EPOCHS, _MAMBAVISION_WARMUP_EPOCHS = 310, 20  # 300 + 10 cooldown; 20 warmup (T, T2, S)
# Cobra (arXiv 2403.14520, Table 1 and its Cobra_3B config): its one stage, projector + language model.
_COBRA = Recipe(
    "Cobra's one training stage (arXiv 2403.14520; Cobra has no alignment stage): 2 epochs, global batch 128, AdamW "
    "lr 2e-5, weight decay 0.1, warmup ratio 0.03, cosine; Cobra's pretrained vision encoder stays frozen, here the "
    "tower trains too; add --bf16 on a GPU for its BF16 AMP",
    # warmup_steps below 1 is a ratio: TrainingArguments reads it as a fraction of the steps.
    {"num_train_epochs": 2, "global_batch_size": 128, "learning_rate": 2e-5, "weight_decay": 0.1, "warmup_steps": 0.03,
     "lr_scheduler_type": "cosine", "optim": "adamw_torch", "save_steps": 200},
)  # fmt: skip
# Cobra's recipe as Cobra runs it (its pretrained vision encoder frozen), and LLaVA-1.5's two stages as the
# alternative (scripts/v1_5/pretrain.sh and finetune.sh: the projector alone, then projector + LM). Each keeps the
# tower frozen (weights, BatchNorm statistics, drop-path off), checkpoints activations through the blocks of tower
# and LM (TrainingArguments' gradient_checkpointing) and uses bf16 on a GPU.
_COBRA_TRAINING = {"num_train_epochs": 2, "global_batch_size": 128, "learning_rate": 2e-5, "weight_decay": 0.1,
                   "warmup_steps": 0.03, "lr_scheduler_type": "cosine", "optim": "adamw_torch",
                   "gradient_checkpointing": True}  # fmt: skip
VLM_RECIPES = {
    "cobra": Recipe(
        "Cobra's (arXiv 2403.14520) one stage: vision tower frozen, projector + language model trained; 2 epochs, "
        "global batch 128, AdamW lr 2e-5, weight decay 0.1, warmup ratio 0.03, cosine; gradient checkpointing; "
        "bf16 on a GPU",
        _COBRA_TRAINING, frozen=("vision_tower",), bf16_on_gpu=True,
    ),
    "llava-stage1": Recipe(
        "LLaVA-1.5's alignment stage: the projector alone trains (tower and language model frozen); 1 epoch, global "
        "batch 256, lr 1e-3, no weight decay, warmup ratio 0.03, cosine; gradient checkpointing; bf16 on a GPU",
        {**_COBRA_TRAINING, "num_train_epochs": 1, "global_batch_size": 256, "learning_rate": 1e-3,
         "weight_decay": 0.0},
        frozen=("vision_tower", "language_model", "lm_head"), bf16_on_gpu=True,
    ),
    "llava-stage2": Recipe(
        "LLaVA-1.5's instruction stage (run on the stage-1 model): projector + language model train, tower frozen; "
        "1 epoch, global batch 128, lr 2e-5, no weight decay, warmup ratio 0.03, cosine; gradient checkpointing; "
        "bf16 on a GPU",
        {**_COBRA_TRAINING, "num_train_epochs": 1, "weight_decay": 0.0},
        frozen=("vision_tower",), bf16_on_gpu=True,
    ),
}  # fmt: skip
_VLM = {"family": "vlm_mamba", "builder": "builders:vlm_mamba", "default_dataset": "easy-vqa"}
_VQA_DATA = "`easy-vqa` (embedded), VQA v2 files or a Hub id"
# The benchmarks beside VQA v2 (training/benchmarks.py): scored only, `evaluate TASK --model FOLDER --dataset PATH`.
_BENCHMARK = {"family": "vlm_mamba", "model_class": "VLMambaForConditionalGeneration",
              "builder": "benchmarks:benchmark", "default_dataset": None,
              "recipes": {"cpu": Recipe("none: a benchmark is evaluated, not trained on")}}  # fmt: skip

TASKS = {
    task.name: task
    for task in (
        Task(
            "image-classification",
            "MambaVision image classifier (default data: scikit-learn's digits)",
            family="mambavision",
            model_class="MambaVisionForImageClassification",
            builder="builders:image_classification",
            scorer="builders:accuracy",
            data="`digits` (embedded: scikit-learn's 8x8 digits, upscaled), an imagefolder folder or a Hub id",
            default_dataset="digits",
            recipes={
                # ~30 s on 1 CPU thread: 1,437 digits x 3 epochs, 1.5 M parameters.
                "cpu": Recipe(
                    "3 epochs, batch 32, AdamW lr 2e-3, cosine (the digits: about 30 s on 1 CPU thread)",
                    # 135 steps of ~0.2 s: a checkpoint every ~10 s costs little (1.5 M parameters)
                    {"num_train_epochs": 3, "per_device_train_batch_size": 32, "learning_rate": 2e-3, "save_steps": 50},
                ),
                # MambaVision's ImageNet recipe (mambavision/configs/*.yaml, T / T2 / S). transformers' Trainer has no
                # LAMB (TrainingArguments.optim names none, nor does torch): AdamW stands in, as LAMB is Adam(W)'s
                # update scaled per layer by the trust ratio ||w|| / ||update||. The paper's lr 5e-3 is kept as
                # stated, though without the trust ratio it is a larger step. Not in TrainingArguments, so left out:
                # EMA 0.9998, MESA, RandAugment, mixup, cutmix; AMP is --bf16 (on a GPU: on this CPU bf16 is slower).
                "paper": Recipe(
                    "MambaVision's ImageNet recipe (arXiv 2407.08083, configs of T / T2 / S): 310 epochs, batch 128 "
                    "per device, lr 5e-3, cosine with 20 warmup epochs, weight decay 0.05, gradient clipping 5, label "
                    "smoothing 0.1; AdamW instead of LAMB (transformers has none); no EMA, MESA, RandAugment, mixup or "
                    "cutmix",
                    {
                        "optim": "adamw_torch",
                        "learning_rate": 5e-3,
                        "per_device_train_batch_size": 128,
                        "num_train_epochs": _MAMBAVISION_EPOCHS,
                        "lr_scheduler_type": "cosine",  # over all 310 epochs: Trainer's cosine has no separate cooldown
                        "warmup_steps": _MAMBAVISION_WARMUP_EPOCHS / _MAMBAVISION_EPOCHS,
                        "weight_decay": 0.05,  # T / T2 / S; the paper's B uses 0.075, L / L2 0.12 (--weight-decay)
                        "max_grad_norm": 5.0,
                        "label_smoothing_factor": 0.1,
                        "save_steps": 1000,  # ~10,000 steps an epoch on ImageNet
                    },
                ),
            },
        ),
        Task(
            "sentiment",
            "Coupled Mamba on MMSA / MulT sentiment features (CMU-MOSI, CMU-MOSEI, CH-SIMS)",
            family="coupled_mamba",
            model_class="CoupledMambaForSequenceClassification",
            builder="sentiment:sentiment_task",
            scorer="sentiment:sentiment_score",
            data="an MMSA / MulT pickle, a folder holding one, or a Hub id",
            default_dataset=None,
            # The paper's own numbers are train_sentiment's defaults (150 epochs, batch 1024 on MOSEI, lr 5e-4, ...).
            training="sentiment:sentiment_training",
            recipes={
                "cpu": Recipe(
                    "10 epochs, batch 64, AdamW lr 5e-4 (constant), weight decay 5e-4, the checkpoint with the best "
                    "validation MAE",
                    {"num_train_epochs": 10, "per_device_train_batch_size": 64, "per_device_eval_batch_size": 64},
                ),
                "paper": Recipe(
                    "Coupled Mamba's (arXiv 2405.18014): 150 epochs, batch 1024 on MOSEI (SIMS 128, SIMS v2 256; MOSI "
                    "128, not stated), lr 5e-4, weight decay 5e-4, the best validation MAE; AdamW and a constant lr "
                    "where the released code has Adam and StepLR"
                ),
            },
        ),
        # easy-VQA, the two stages of bench/bench_vlm_learning.py (98.4% VQA accuracy in 13 min on 2 threads):
        # caption, 12 epochs of the 3,542 descriptions (3.5 min); then vqa from that model, 2 epochs of the questions
        # with the descriptions mixed in (9.5 min).
        Task(
            "caption",
            "VLM-Mamba captioner (default data: easy-VQA image descriptions)",
            model_class="VLMambaForConditionalGeneration",
            scorer="builders:caption_score",
            extras=("captions",),
            data="`easy-vqa` (embedded: its image descriptions), COCO files or a Hub id",
            recipes={
                "cpu": Recipe(
                    "stage 1 of the easy-VQA recipe: 12 epochs of image descriptions, batch 64, AdamW lr 2e-3, cosine "
                    "(about 3.5 min on 2 CPU threads)",
                    # 672 steps of ~0.3 s: the common checkpoint every 200 steps is one a minute
                    {"num_train_epochs": 12, "per_device_train_batch_size": 64, "learning_rate": 2e-3},
                ),
                "paper": _COBRA,
                **VLM_RECIPES,
            },
            **_VLM,
        ),
        Task(
            "vqa",
            "VLM-Mamba visual question answering (default data: easy-VQA)",
            model_class="VLMambaForConditionalGeneration",
            scorer="builders:vqa_score",
            data=_VQA_DATA,
            recipes={
                "cpu": Recipe(
                    "stage 2 of the easy-VQA recipe: 2 epochs of the questions with the image descriptions mixed in, "
                    "batch 64, AdamW lr 2e-3, cosine (about 9.5 min on 2 CPU threads)",
                    # ~1,900 steps of ~0.3 s: a checkpoint every 1.5 min
                    {
                        "num_train_epochs": 2,
                        "per_device_train_batch_size": 64,
                        "learning_rate": 2e-3,
                        "save_steps": 300,
                    },
                ),
                "paper": _COBRA,
                **VLM_RECIPES,
            },
            **_VLM,
        ),
        # LLaVA-format conversations (multi-turn, text-only rows mixed in), labels on the gpt turns: see instruct.py.
        Task(
            "instruct",
            "VLM-Mamba instruction tuning on LLaVA-format conversations (llava_v1_5_mix665k.json, ...)",
            family="vlm_mamba",
            model_class="VLMambaForConditionalGeneration",
            builder="instruct:instruct_task",
            scorer="instruct:instruct_score",
            data="a LLaVA-format JSON (llava_v1_5_mix665k.json, blip_laion_cc_sbu_558k.json, or JSON lines of such "
            "rows), its images under --image-root (default: the JSON's folder)",
            default_dataset=None,
            recipes={
                "cpu": Recipe(
                    "1 epoch, batch 16, AdamW lr 1e-3, cosine: sized for a smoke run on a CPU (on the 665K mix, bound "
                    "it with --max-steps or --max-train-samples)",
                    {"num_train_epochs": 1, "per_device_train_batch_size": 16, "learning_rate": 1e-3},
                ),
                "paper": _COBRA,
                **VLM_RECIPES,
            },
        ),
        Task(
            "image-text-classification",
            "VLM-Mamba classifier (default data: easy-VQA answers as 13 classes)",
            model_class="VLMambaForImageTextClassification",
            scorer="builders:accuracy",
            data=_VQA_DATA,
            # No paper states a recipe for VLM-Mamba's image + text classifier.
            recipes={
                "cpu": Recipe(
                    "1 epoch of easy-VQA's 13 answers as classes, batch 64, AdamW lr 2e-3",
                    {"num_train_epochs": 1, "per_device_train_batch_size": 64, "learning_rate": 2e-3},
                )
            },
            **_VLM,
        ),
        Task(
            "gqa",
            "VLM-Mamba on GQA test-dev balanced (evaluate only), LLaVA-1.5 / Cobra prompts",
            scorer="benchmarks:gqa_score",
            data="the folder of testdev_balanced_questions.json (GQA's release, or LLaVA's eval/gqa/data) with images/",
            **_BENCHMARK,
        ),
        Task(
            "textvqa",
            "VLM-Mamba on TextVQA 0.5.1 val (evaluate only), LLaVA-1.5 / Cobra prompts",
            scorer="benchmarks:textvqa_score",
            data="the folder of TextVQA_0.5.1_val.json (+ TextVQA_Rosetta_OCR_v0.2_val.json) with train_images/, or a "
            "Hub id (lmms-lab/textvqa layout)",
            **_BENCHMARK,
        ),
        Task(
            "pope",
            "VLM-Mamba on POPE (adversarial, popular, random; evaluate only), LLaVA-1.5 / Cobra prompts",
            scorer="benchmarks:pope_score",
            data="the folder of coco_pope_{adversarial,popular,random}.json (or its coco/) with COCO's val2014/, or a "
            "Hub id (lmms-lab/POPE layout)",
            **_BENCHMARK,
        ),
    )
}

# Every recipe name of every task, for --recipe's choices.
RECIPE_NAMES = tuple(dict.fromkeys(name for task in TASKS.values() for name in task.recipes))


def task_first(arguments: list[str]) -> list[str]:
    """`train` / `evaluate` arguments with the task moved first, so that options may come before it as with git or
    pip (`train --max-steps 2 vqa`). The task is the first task name that is no option's value (not right after
    `--name` without `=`); else the first task name (after a flag: `--lora vqa`); else the first word that is no
    option's value (a misspelt task, which the parser then reports); else nothing moves."""

    def follows_an_option(index: int) -> bool:
        before = arguments[index - 1] if index else ""
        return before.startswith("-") and "=" not in before

    words = [i for i, argument in enumerate(arguments) if not argument.startswith("-")]
    names = [i for i in words if arguments[i] in TASKS]
    chosen = [i for i in names if not follows_an_option(i)] or names or [i for i in words if not follows_an_option(i)]
    if not chosen:
        return list(arguments)
    return [arguments[chosen[0]], *arguments[: chosen[0]], *arguments[chosen[0] + 1 :]]


__all__ = ["COMMON_TRAINING", "RECIPE_NAMES", "TASKS", "VLM_RECIPES", "Recipe", "Task", "task_first"]
