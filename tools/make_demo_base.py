"""Makes the demo's pretrained base, `src/mamba_multimodal/training/pretrained/vlm-mamba-easy-vqa-base/`.

LLaVA's alignment stage on easy-VQA: `mamba-multimodal train caption` (its embedded recipe: a fresh 1.96 M-parameter
VLM-Mamba with a MambaVision tower, 12 epochs of the 3,542 train-image descriptions "a red circle", batch 64, lr 2e-3,
seed 0). The base describes images and has never seen a question; `make demo` teaches it to answer with LoRA.

The folder gets the weights, config, generation config, processor and tokenizer, and `recipe.json`: what made it
(`demo.base_recipe()`: command, model config, training arguments, data digest, seed) plus the run's facts (package
versions, threads, wall time, load average, the CLI's caption metrics on the test descriptions, the weights' sha256).
`tests/training/test_demo_base.py` fails when the recipe changes and the base is not remade.

Usage: OMP_NUM_THREADS=2 .venv/bin/python tools/make_demo_base.py [--output DIR]     (~4 min on 2 cores)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _without_auto_map(settings):
    """The JSON settings without any `auto_map` (it names the remote-code bundle, which the package's copy leaves
    out: the installed package serves these classes)."""
    if isinstance(settings, dict):
        return {key: _without_auto_map(value) for key, value in settings.items() if key != "auto_map"}
    return settings


def ship(run_dir: Path, output: Path) -> list[str]:
    """Copies the run's files but `demo.NOT_SHIPPED` into a fresh `output` (replacing the old one only once
    complete), the JSON files without `auto_map`; returns the names copied."""
    from mamba_multimodal.training.demo import NOT_SHIPPED

    names = sorted(
        path.name
        for path in run_dir.iterdir()
        if path.is_file() and not any(fnmatch.fnmatch(path.name, pattern) for pattern in NOT_SHIPPED)
    )
    staging = output.with_name(f".staging-{output.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in names:
        if name.endswith(".json"):
            settings = _without_auto_map(json.loads((run_dir / name).read_text()))
            (staging / name).write_text(json.dumps(settings, indent=2) + "\n")
        else:
            shutil.copyfile(run_dir / name, staging / name)  # not the temporary files' 0600 mode
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)
    return names


def main() -> None:
    from mamba_multimodal.training import cli, demo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=demo.PRETRAINED_DIR / demo.BASE_NAME)
    args = parser.parse_args()

    import torch

    recipe = demo.base_recipe()
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        code = cli.main([*demo.BASE_ARGV, "--output-dir", run_dir])
        seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"`{recipe['command']}` failed with exit code {code}")
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        names = ship(Path(run_dir), args.output)
    weights = args.output / "model.safetensors"
    recipe.update(
        versions=demo.package_versions(),
        python=platform.python_version(),
        torch_threads=torch.get_num_threads(),
        wall_seconds=round(seconds, 1),
        load_average_1min=round(os.getloadavg()[0], 2),
        caption_metrics_on_test_descriptions=metrics,
        files=names,
        model_safetensors_sha256=demo.sha256_of(weights),
    )
    (args.output / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    size = sum(path.stat().st_size for path in args.output.iterdir())
    print(f"wrote {args.output} ({size / 1e6:.1f} MB: {', '.join([*names, 'recipe.json'])}) in {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
