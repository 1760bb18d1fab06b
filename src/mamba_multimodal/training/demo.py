"""The demo: LoRA takes the shipped VLM-Mamba base, which describes easy-VQA images but never saw a question, to
answering easy-VQA's questions; before and after on the whole test split, a few answers drawn, a folder ready to push.

    make demo                      # or: python -m mamba_multimodal.training.demo [--quick] [--output-dir runs/demo]

The base (`base_model_path()`, ~8 MB in the package) is `tools/make_demo_base.py`'s output: the command line's
`train caption` recipe (`BASE_ARGV`), a fresh 1.96 M-parameter VLM-Mamba with a MambaVision tower trained on the
3,542 image descriptions of easy-VQA's train split ("a red circle"). Its folder holds `recipe.json`, what made it
(`base_recipe()` recomputes everything in it but the run's own facts; a test keeps the two equal).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

BASE_NAME = "vlm-mamba-easy-vqa-base"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
# The alignment stage (LLaVA's first): the CLI's caption recipe (tasks.RECIPES["caption"]["cpu"], a fresh model
# from recipes.easy_vqa_vlm_config("mambavision"), easy-VQA's train-split descriptions); no tensorboard logs.
BASE_ARGV = ("train", "caption", "--report-to", "none")
# What the CLI writes beside the weights and the processor that the shipped base leaves out: its run's metrics
# (kept in recipe.json), its curves, and whatever save_pretrained adds for the Hub (a remote-code copy of the package
# and a model card would go stale in the package itself).
NOT_SHIPPED = ("metrics.json", "training_curves.png", "README.md", "*.py")
VERSIONED_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors", "numpy",
                      "easy-vqa", "mamba-multimodal")  # fmt: skip


def base_model_path() -> Path:
    """The folder of the shipped base: `from_pretrained(base_model_path())` (AutoModelForImageTextToText,
    AutoProcessor).

    Raises:
        FileNotFoundError: the folder is missing (a checkout without it: `python tools/make_demo_base.py` remakes it).
    """
    path = PRETRAINED_DIR / BASE_NAME
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the demo base is missing from {path}: remake it with `python tools/make_demo_base.py`"
        )
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rows_digest(split) -> str:
    """sha256 of the JSON list of [image file name, caption] of a caption split's rows, in order."""
    import datasets

    paths = split.cast_column("image", datasets.Image(decode=False))["image"]
    rows = [[Path(image["path"]).name, caption] for image, caption in zip(paths, split["caption"], strict=True)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def base_recipe() -> dict:
    """What `tools/make_demo_base.py` runs, as recorded in the base's recipe.json: the command, the model's config,
    the training arguments the command sets (the CLI's recipe and common values, and the options it gives), the data
    (name, split, rows, digest of the rows) and the seed. Builds the run as the CLI does (model and data, no
    training)."""
    from . import cli
    from .tasks import COMMON_TRAINING, RECIPES, TASK_BUILDERS

    command, (task, *options) = BASE_ARGV[0], BASE_ARGV[1:]
    task, model_args, data_args, args = cli._parse(command, [task, *options, "--output-dir", os.devnull])
    run = TASK_BUILDERS[task](model_args, data_args)
    # report_to only picks the loggers (and reads back differently across transformers versions)
    set_by_recipe = set(COMMON_TRAINING) | set(RECIPES[task][data_args.recipe]) | cli._given(options)
    set_by_recipe -= {"report_to"}
    arguments = args.to_dict()
    config = run.model.config.to_dict()
    config.pop("transformers_version", None)
    recipe = {
        "command": f"mamba-multimodal {' '.join(BASE_ARGV)}",
        "model_config": config,
        "training_arguments": {key: arguments[key] for key in sorted(set_by_recipe)},
        "data": {"dataset": run.data_name, "split": "train", "rows": len(run.train), "digest": rows_digest(run.train)},
        "seed": args.seed,
    }
    return json.loads(json.dumps(recipe))  # as recipe.json reads back (integer keys become strings)


def package_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in VERSIONED_PACKAGES}


__all__ = ["BASE_ARGV", "base_model_path", "base_recipe"]
