"""MambaVision benchmark: our MambaVision against transformers' ConvNeXt and ViT, in one run, on 2 CPU threads.

(a) throughput: inference of batch 8 at 224×224, random weights, eval mode, `torch.inference_mode()`:
    MambaVision-T (ours, PyTorch), ConvNeXt-T and ViT-S/16 (transformers), and MambaVision-T exported with
    `mamba_multimodal.export.export_onnx` and run by onnxruntime (its logits are checked against PyTorch's).
    Every (model, round) runs in a fresh subprocess, so `peak_rss_mb` is that model's own high-water mark and
    "peak over built model" what inference added to the process with the model and input already built. images/s
    come from the median timed batch after warm-up, in the quietest of `--rounds` interleaved rounds (on a quiet
    machine, simply the median; on a shared one, a round spoiled by a neighbour does not decide the row). A profile
    splits MambaVision-T's time by module kind (selective scan, the rest of the mixers, attention, MLPs, convs).
(b) digits: a learning check on real images. scikit-learn's handwritten digits (1,797 8×8 grey images, 10 classes,
    shipped with the package), upscaled bilinearly, 3 channels, a fixed stratified 20% held-out split. A small
    MambaVision (Mamba mixers and attention in stages 3-4) and a transformers ConvNeXt with about as many parameters
    are trained by transformers' `Trainer` with one recipe (optimizer, schedule, epochs, batch, augmentation, seed).

Usage: python bench/bench_mambavision.py [--part {throughput,digits,all}] [--quick] [--rounds N] [--seed S]
                                          [--output PATH]
Full runs write bench/results/bench_mambavision.json (a run of one part keeps the other part's last results);
--quick runs write to the system temp folder unless --output is given. Timings are only meaningful on a quiet
machine: the 1-minute load average is recorded around each part, with a warning when the machine is busy.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import THREADS, current_rss_mb, machine, peak_rss_mb, time_calls, write_json

BATCH, IMAGE_SIZE, NUM_CLASSES = 8, 224, 1000
RESULTS = Path(__file__).parent / "results" / "bench_mambavision.json"

# Digits: the recipe both models are trained with, and the small MambaVision (derived from the tiny test preset).
DIGITS_RECIPE = {
    "resolution": 64,  # 8×8 → 64×64 bilinear; stage 3 sees 4×4 = 16 tokens, stage 4 2×2 = 4 tokens
    "test_size": 0.2,
    "seed": 0,
    "epochs": 30,
    "batch_size": 32,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.1,  # a fraction of all steps (transformers 5.x: floats < 1 are ratios)
    "weight_decay": 0.05,
    "optim": "adamw_torch",
    "augment": {"degrees": 10.0, "scale": 0.1, "translate": 0.1},  # random affine, per image
    "drop_path_rate": 0.1,
}
DIGITS_MAMBAVISION = {"depths": [1, 1, 2, 2], "num_heads": [1, 1, 2, 4], "dim": 24, "in_dim": 16}
QUICK_EPOCHS = 2


# ------------------------------------------------------------------------------------------------ helpers
def time_batches(function, batches: int, warmup: int) -> list[float]:
    """Wall time of each of `batches` calls of `function()` after `warmup` untimed calls."""
    return time_calls(function, batches, warmup)


def busy_warning() -> str | None:
    """A line saying the machine is busy (1-minute load above the cores not used by our threads), else None.
    OpenMP code on 2 threads slows down far more than proportionally when a neighbour takes a core."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > max(cores - THREADS, 0) + 0.5:
        return f"machine busy: 1-minute load {load:.1f} on {cores} cores; timings are unreliable, re-run on a quiet one"
    return None


def run_worker(kind: str, spec: dict) -> dict:
    """Runs `kind` in a fresh interpreter with OMP_NUM_THREADS=2; returns the JSON it prints last."""
    command = [sys.executable, __file__, "--worker", kind, json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"worker {kind} {spec} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def count_parameters(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ---------------------------------------------------------------------------------------- (a) throughput
MODELS = {
    "mambavision-t": "MambaVision-T (ours, PyTorch)",
    "convnext-t": "ConvNeXt-T (transformers)",
    "vit-s16": "ViT-S/16 (transformers, sdpa)",
    "onnxruntime": "MambaVision-T (ours, onnxruntime)",
}


def build_imagenet_model(key: str):
    """Random-weight 1000-class classifiers; every one in eval mode."""
    import transformers

    from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification

    if key == "mambavision-t":
        return MambaVisionForImageClassification(MambaVisionConfig.from_preset("mambavision-t")).eval()
    if key == "convnext-t":
        config = transformers.ConvNextConfig(
            depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768], image_size=IMAGE_SIZE, num_labels=NUM_CLASSES
        )
        return transformers.ConvNextForImageClassification(config).eval()
    if key == "vit-s16":
        config = transformers.ViTConfig(
            hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, patch_size=16,
            image_size=IMAGE_SIZE, layer_norm_eps=1e-6, num_labels=NUM_CLASSES,
        )  # fmt: skip
        return transformers.ViTForImageClassification(config).eval()
    raise ValueError(f"unknown model {key!r}; known: {sorted(MODELS)}")


def infer_worker(spec: dict) -> dict:
    """Fresh process: builds one PyTorch model, times batches under inference_mode, reads the peak RSS."""
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build_imagenet_model(spec["model"])
    pixel_values = torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE)
    baseline = current_rss_mb()

    def forward():
        with torch.inference_mode():
            return model(pixel_values=pixel_values).logits

    times = time_batches(forward, spec["batches"], spec["warmup"])
    return {"params": count_parameters(model), "batch_seconds": times, "peak_rss_mb": peak_rss_mb(),
            "inference_peak_mb": peak_rss_mb() - baseline}  # fmt: skip


def export_worker(spec: dict) -> dict:
    """Fresh process: exports MambaVision-T (seed 0) to ONNX and saves PyTorch's logits on a fixed input, so the
    onnxruntime worker can check that it computes the same function."""
    import numpy as np
    import torch

    try:
        from mamba_multimodal.export import export_onnx
    except ImportError as error:
        return {"skipped": f"skipped: export_onnx not available ({error})"}
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build_imagenet_model("mambavision-t")
    start = time.perf_counter()
    path = export_onnx(model, spec["path"], image_size=IMAGE_SIZE, batch_size=BATCH, opset=18)
    export_seconds = time.perf_counter() - start
    pixel_values = np.random.default_rng(1).standard_normal((BATCH, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    with torch.inference_mode():
        logits = model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()
    np.save(spec["reference"], logits)
    return {"path": str(path), "params": count_parameters(model), "export_seconds": export_seconds}


def onnxruntime_worker(spec: dict) -> dict:
    """Fresh process without torch: an onnxruntime CPU session on 2 intra-op threads, timed like the others."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(spec["path"], options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    pixel_values = np.random.default_rng(1).standard_normal((BATCH, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    baseline = current_rss_mb()
    logits = session.run(None, {input_name: pixel_values})[0]
    max_abs_diff = float(np.abs(logits - np.load(spec["reference"])).max())
    times = time_batches(lambda: session.run(None, {input_name: pixel_values}), spec["batches"], spec["warmup"])
    return {"batch_seconds": times, "peak_rss_mb": peak_rss_mb(), "inference_peak_mb": peak_rss_mb() - baseline,
            "max_abs_diff_vs_pytorch": max_abs_diff}  # fmt: skip


def _module_labels(model) -> dict:
    """Module → what the profile calls it (non-overlapping, except the scan inside each mixer)."""
    from mamba_multimodal.modeling import modeling_mambavision as mv

    labels = {model.model.patch_embed: "stem (2 strided convs + BN)", model.model.norm: "head (BN + Linear)",
              model.model.head: "head (BN + Linear)"}  # fmt: skip
    for stage, level in enumerate(model.model.levels, start=1):
        if level.downsample is not None:
            labels[level.downsample] = "downsample convs"
        for block in level.blocks:
            if isinstance(block, mv.MambaVisionConvBlock):
                labels[block] = f"stage {stage} ConvBlocks"
                continue
            kind = "attention" if isinstance(block.mixer, mv.MambaVisionAttention) else "Mamba mixer (non-scan)"
            labels[block.mixer] = f"stage {stage} {kind}"
            labels[block.mlp] = f"stage {stage} MLP"
            labels[block.norm1] = labels[block.norm2] = f"stage {stage} LayerNorms"
    return labels


def profile_worker(spec: dict) -> dict:
    """Fresh process: where MambaVision-T spends a batch, by module kind (forward hooks) and by ATen op.

    The selective scan is timed by wrapping the module-level `selective_scan` that the mixers call (run-time
    instrumentation only); its time is taken out of the mixers' own."""
    import torch

    from mamba_multimodal.modeling import modeling_mambavision as mv

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build_imagenet_model("mambavision-t")
    pixel_values = torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE)
    seconds, starts, stage = collections.defaultdict(float), {}, {"now": 0}
    labels = _module_labels(model)

    def scan(*args, **kwargs):
        start = time.perf_counter()
        out = original_scan(*args, **kwargs)
        seconds[f"stage {stage['now']} Mamba mixer: selective scan"] += time.perf_counter() - start
        return out

    def before(module, _):
        starts[module] = time.perf_counter()
        if "Mamba mixer" in labels[module]:
            stage["now"] = int(labels[module].split()[1])

    def after(module, _, __):
        seconds[labels[module]] += time.perf_counter() - starts[module]

    original_scan, mv.selective_scan = mv.selective_scan, scan
    for module in labels:
        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    def forward():
        with torch.inference_mode():
            model(pixel_values=pixel_values)

    forward()  # warm-up
    batches = []  # per batch: {module kind: seconds}, the batch's total
    for _ in range(spec["batches"]):
        seconds.clear()
        total = time_batches(forward, batches=1, warmup=0)[0]
        batches.append((dict(seconds), total))
    modules, total = min(batches, key=lambda batch: batch[1])  # the quietest batch: neighbours inflate the rest
    for stage_number in (3, 4):  # the mixer hooks timed the scan too
        scan_name = f"stage {stage_number} Mamba mixer: selective scan"
        modules[f"stage {stage_number} Mamba mixer (non-scan)"] -= modules[scan_name]
    modules["other (windows, residual adds, pooling)"] = total - sum(modules.values())
    return {"batch_seconds": total, "modules": modules, "top_ops_ms": _top_ops(forward, spec["batches"])}


def _top_ops(forward, batches: int, count: int = 10) -> dict:
    """The ATen ops with the most self CPU time in the quietest of `batches` profiled batches."""
    from torch.profiler import ProfilerActivity, profile

    profiles = []
    for _ in range(batches):
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            forward()
        events = profiler.key_averages()
        profiles.append((sum(event.self_cpu_time_total for event in events), events))
    events = min(profiles, key=lambda item: item[0])[1]
    ops = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:count]
    return {op.key: op.self_cpu_time_total / 1e3 for op in ops}


def bench_throughput(quick: bool, rounds: int, workdir: Path) -> dict:
    batches, warmup = (3, 1) if quick else (10, 3)
    onnx_spec = {"path": str(workdir / "mambavision_t.onnx"), "reference": str(workdir / "reference_logits.npy")}
    export = run_worker("export", onnx_spec)
    if "skipped" in export:
        print(f"  ONNX export: {export['skipped']}")
    else:
        print(f"  ONNX export: {export['export_seconds']:.1f} s -> {export['path']}")
    measured = collections.defaultdict(list)
    for round_index in range(rounds):
        for key in MODELS:
            spec = {"model": key, "batches": batches, "warmup": warmup}
            if key == "onnxruntime":
                if "skipped" in export:
                    continue
                result = run_worker("onnxruntime", {**spec, **onnx_spec, "path": export["path"]})
                result["params"] = export["params"]
            else:
                result = run_worker("infer", spec)
            measured[key].append(result)
            median = statistics.median(result["batch_seconds"])
            print(f"  round {round_index + 1} {MODELS[key]:36s} {BATCH / median:7.1f} img/s "
                  f"(median batch {median:.3f} s)  peak RSS {result['peak_rss_mb']:6.0f} MB", flush=True)  # fmt: skip
    rows = [_throughput_row(key, results) for key, results in measured.items()]
    if "skipped" in export:
        rows.append({"key": "onnxruntime", "model": MODELS["onnxruntime"], "skipped": export["skipped"]})
    profile_result = run_worker("profile", {"batches": batches})
    return {"batch": BATCH, "image_size": IMAGE_SIZE, "threads": THREADS, "rounds": rounds, "timed_batches": batches,
            "warmup_batches": warmup, "onnx_export": export, "rows": rows, "profile": profile_result}  # fmt: skip


def _throughput_row(key: str, results: list[dict]) -> dict:
    """images/s from the quietest round: each round's median batch, then the best round. On a quiet machine this is
    the plain median; on a shared one, a round spoiled by a neighbour (every batch slow) does not decide the row."""
    round_medians = [statistics.median(result["batch_seconds"]) for result in results]
    pooled = [seconds for result in results for seconds in result["batch_seconds"]]
    row = {"key": key, "model": MODELS[key], "params": results[0]["params"],
           "median_batch_seconds": min(round_medians), "images_per_second": BATCH / min(round_medians),
           "round_median_batch_seconds": round_medians, "pooled_median_batch_seconds": statistics.median(pooled),
           "best_batch_seconds": min(pooled), "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
           "inference_peak_mb": max(result["inference_peak_mb"] for result in results),
           "batch_seconds": pooled}  # fmt: skip
    if key == "onnxruntime":
        row["max_abs_diff_vs_pytorch"] = max(result["max_abs_diff_vs_pytorch"] for result in results)
    return row


# -------------------------------------------------------------------------------------------- (b) digits
def digits_arrays(resolution: int, test_size: float, seed: int):
    """Upscaled digits in [0, 1], (n, 1, r, r), and labels; a stratified split with a fixed seed."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  #            (n, 1, 8, 8)
    images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False).clamp(0, 1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train, test = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=digits.target, random_state=seed
    )
    return (images[train], labels[train]), (images[test], labels[test])


class DigitsDataset:
    """pixel_values (3, r, r) normalised with the training split's mean/std, labels; a random affine per image
    (rotation, scale, translation, zero fill) when `augment` is given, from its own seeded generator, so every
    model trained with the same seed sees the same augmented images in the same order."""

    def __init__(self, images, labels, mean: float, std: float, augment: dict | None = None, seed: int = 0):
        import torch

        self.images, self.labels, self.mean, self.std, self.augment = images, labels, mean, std, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def _random_affine(self, image):
        import torch
        import torch.nn.functional as F

        degrees, scale, translate = self.augment["degrees"], self.augment["scale"], self.augment["translate"]
        uniform = torch.rand(4, generator=self.generator) * 2 - 1  # in [-1, 1)
        angle, zoom = math.radians(degrees) * uniform[0].item(), 1 + scale * uniform[1].item()
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[[cos, -sin, 2 * translate * uniform[2].item()],
                               [sin, cos, 2 * translate * uniform[3].item()]]])  # fmt: skip
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        if self.augment:
            image = self._random_affine(image)
        image = ((image - self.mean) / self.std).expand(3, -1, -1).contiguous()
        return {"pixel_values": image, "labels": self.labels[index]}


def build_digits_model(kind: str, recipe: dict):
    """The small MambaVision, or the ConvNeXt of the same depths whose width gives the closest parameter count."""
    import transformers

    from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification

    resolution, drop_path = recipe["resolution"], recipe["drop_path_rate"]
    windows = [4, 4, max(1, resolution // 16), max(1, resolution // 32)]  # one window covers stages 3 and 4
    mambavision_config = MambaVisionConfig.from_preset(
        "mambavision-tiny-test", **DIGITS_MAMBAVISION, window_size=windows, image_size=resolution,
        drop_path_rate=drop_path, num_labels=10,
    )  # fmt: skip
    if kind == "mambavision":
        return MambaVisionForImageClassification(mambavision_config)
    target = count_parameters(MambaVisionForImageClassification(mambavision_config))
    configs = [
        transformers.ConvNextConfig(depths=DIGITS_MAMBAVISION["depths"], hidden_sizes=[width * 2**i for i in range(4)],
                                    image_size=resolution, drop_path_rate=drop_path, num_labels=10)
        for width in range(8, 129, 4)
    ]  # fmt: skip
    best = min(configs, key=lambda config: abs(_convnext_parameters(config) - target))
    return transformers.ConvNextForImageClassification(best)


def _convnext_parameters(config) -> int:
    import torch
    import transformers

    with torch.device("meta"):
        return count_parameters(transformers.ConvNextForImageClassification(config))


def digits_worker(spec: dict) -> dict:
    """Fresh process: trains one model on the digits with transformers' Trainer, then scores the held-out split."""
    import torch
    import transformers

    torch.set_num_threads(THREADS)
    recipe = spec["recipe"]
    (train_images, train_labels), (test_images, test_labels) = digits_arrays(
        recipe["resolution"], recipe["test_size"], recipe["seed"]
    )
    mean, std = train_images.mean().item(), train_images.std().item()
    train = DigitsDataset(train_images, train_labels, mean, std, recipe["augment"], seed=recipe["seed"])
    test = DigitsDataset(test_images, test_labels, mean, std)
    transformers.set_seed(recipe["seed"])
    model = build_digits_model(spec["model"], recipe)
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = transformers.TrainingArguments(
            output_dir=output_dir, use_cpu=True, seed=recipe["seed"], data_seed=recipe["seed"],
            num_train_epochs=recipe["epochs"], per_device_train_batch_size=recipe["batch_size"],
            per_device_eval_batch_size=128, learning_rate=recipe["learning_rate"],
            lr_scheduler_type=recipe["lr_scheduler_type"], warmup_steps=recipe["warmup_steps"],
            weight_decay=recipe["weight_decay"], optim=recipe["optim"], eval_strategy="no", save_strategy="no",
            logging_strategy="epoch", report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        )  # fmt: skip
        trainer = transformers.Trainer(
            model=model, args=arguments, train_dataset=train, data_collator=transformers.default_data_collator
        )
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        trainer.train()
        train_seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
        prediction = trainer.predict(test)
    wrong = int((prediction.predictions.argmax(-1) != prediction.label_ids).sum())
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"params": count_parameters(model), "config": _describe(model), "train_seconds": train_seconds,
            "train_cpu_seconds": cpu_seconds,
            "steps": trainer.state.global_step, "final_train_loss": losses[-1] if losses else None,
            "accuracy": 1 - wrong / len(test), "errors": wrong, "test_images": len(test),
            "train_images": len(train), "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def _cpu_seconds() -> float:
    """User + system CPU time of this process: on a busy machine, wall time grows while this mostly does not."""
    times = os.times()
    return times.user + times.system


def _describe(model) -> dict:
    config = model.config
    if config.model_type == "mambavision":
        return {key: getattr(config, key) for key in ("depths", "num_heads", "window_size", "dim", "in_dim")}
    return {"depths": config.depths, "hidden_sizes": config.hidden_sizes}


DIGITS_MODELS = {"mambavision": "MambaVision (ours, small)", "convnext": "ConvNeXt (transformers, matched params)"}


def bench_digits(quick: bool, seed: int | None) -> dict:
    recipe = {**DIGITS_RECIPE, "epochs": QUICK_EPOCHS} if quick else dict(DIGITS_RECIPE)
    if seed is not None:  # one seed drives the split, the init, the augmentation and the shuffling
        recipe["seed"] = seed
    rows = []
    for key, name in DIGITS_MODELS.items():
        result = run_worker("digits", {"model": key, "recipe": recipe})
        rows.append({"key": key, "model": name, **result})
        print(f"  {name:40s} accuracy {result['accuracy']:.4f} ({result['errors']}/{result['test_images']} wrong) "
              f"in {result['train_seconds']:.1f} s, {result['params'] / 1e6:.2f}M params", flush=True)  # fmt: skip
    return {"recipe": recipe, "rows": rows}


# ----------------------------------------------------------------------------------------------- report
def _header(columns: list[str]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def load_line(section: dict) -> str:
    before, after = section.get("load_average_before"), section.get("load_average_after")
    if before is None or after is None:
        return ""
    return f"\n1-minute load average: {before[0]:.1f} before, {after[0]:.1f} after ({os.cpu_count()} cores)"


def throughput_table(section: dict) -> str:
    rows = section["rows"]
    convnext = next((row for row in rows if row["key"] == "convnext-t"), None)
    columns = ["model", "params (M)", "median batch (s)", "images/s", "vs ConvNeXt-T", "peak RSS (MB)",
               "peak over built model (MB)"]  # fmt: skip
    lines = [_header(columns)]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['model']} | – | – | {row['skipped']} | – | – | – |")
            continue
        ratio = row["images_per_second"] / convnext["images_per_second"] if convnext else float("nan")
        lines.append(
            f"| {row['model']} | {row['params'] / 1e6:.2f} | {row['median_batch_seconds']:.3f} "
            f"| {row['images_per_second']:.1f} | {ratio:.2f}x | {row['peak_rss_mb']:.0f} "
            f"| {row['inference_peak_mb']:.0f} |"
        )
    ort = next((row for row in rows if row["key"] == "onnxruntime" and "skipped" not in row), None)
    if ort:
        lines.append(f"\nonnxruntime vs PyTorch logits, max |difference|: {ort['max_abs_diff_vs_pytorch']:.2e}")
    return "\n".join(lines)


def profile_table(profile: dict) -> str:
    total = profile["batch_seconds"]
    lines = [f"MambaVision-T, batch {BATCH} at {IMAGE_SIZE}: {total * 1e3:.0f} ms in the quietest batch (hooks on)", "",
             "| module kind | ms / batch | share |", "|---|---|---|"]  # fmt: skip
    for name, seconds in sorted(profile["modules"].items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {seconds / total:.1%} |")
    lines += ["", "| ATen op (quietest batch, torch.profiler) | self CPU ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in profile["top_ops_ms"].items()]
    return "\n".join(lines)


def digits_table(section: dict) -> str:
    columns = ["model", "params (M)", "held-out accuracy", "errors", "train wall (s)", "train CPU (s)", "steps",
               "final train loss", "peak RSS (MB)"]  # fmt: skip
    lines = [_header(columns)]
    for row in section["rows"]:
        loss = f"{row['final_train_loss']:.4f}" if row["final_train_loss"] is not None else "–"
        lines.append(
            f"| {row['model']} | {row['params'] / 1e6:.3f} | {row['accuracy']:.2%} "
            f"| {row['errors']}/{row['test_images']} | {row['train_seconds']:.1f} | {row['train_cpu_seconds']:.1f} "
            f"| {row['steps']} | {loss} | {row['peak_rss_mb']:.0f} |"
        )
    lines += ["", "configs: " + "; ".join(f"{row['model']}: {row['config']}" for row in section["rows"])]
    return "\n".join(lines)


def targets(report: dict) -> dict:
    """The issue's targets, evaluated on the sections present."""
    result = {}
    if "throughput" in report:
        speed = {row["key"]: row.get("images_per_second") for row in report["throughput"]["rows"]}
        ratio = speed["mambavision-t"] / speed["convnext-t"]
        result["MambaVision-T CPU throughput >= ConvNeXt-T's"] = {"value": ratio, "unit": "x", "met": ratio >= 1}
    if "digits" in report:
        ours = next(row for row in report["digits"]["rows"] if row["key"] == "mambavision")
        accuracy, seconds = ours["accuracy"], ours["train_seconds"]
        result["digits: MambaVision held-out accuracy >= 97%"] = {
            "value": accuracy,
            "unit": "",
            "met": accuracy >= 0.97,
        }
        result["digits: MambaVision CPU training < 300 s"] = {"value": seconds, "unit": "s", "met": seconds < 300}
    return result


def run_part(report: dict, bench) -> dict:
    """One part's section: its results plus the machine, the mode and the load around it (a busy neighbour, not the
    code, is the usual reason for a slow row on a shared machine)."""
    before = os.getloadavg()
    if warning := busy_warning():
        print(f"  WARNING: {warning}")
    results = bench()
    section = {"machine": report["machine"], "quick": report["quick"], "load_average_before": before}
    return {**section, "load_average_after": os.getloadavg(), **results}


def write_report(report: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, output)


WORKERS = {"infer": infer_worker, "export": export_worker, "onnxruntime": onnxruntime_worker,
           "profile": profile_worker, "digits": digits_worker}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("throughput", "digits", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help=f"3 timed batches, 1 round, {QUICK_EPOCHS} digit epochs")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved throughput rounds (default 3, quick 1)")
    parser.add_argument("--seed", type=int, default=None, help=f"digits seed (default {DIGITS_RECIPE['seed']})")
    parser.add_argument("--output", default=None, help=f"JSON report (default {RESULTS})")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, spec = args.worker
        print(json.dumps(WORKERS[kind](json.loads(spec))))
        return

    default_output = Path(tempfile.gettempdir()) / "bench_mambavision_quick.json" if args.quick else RESULTS
    output = Path(args.output) if args.output else default_output
    rounds = args.rounds or (1 if args.quick else 3)
    previous = json.loads(output.read_text()) if output.exists() else {}
    report = {"machine": machine(), "quick": args.quick}
    report.update({part: previous[part] for part in ("throughput", "digits") if part in previous})
    print(f"MambaVision benchmark on {THREADS} threads{' (quick)' if args.quick else ''}")
    if args.part in ("throughput", "all"):
        print(f"\n(a) throughput, batch {BATCH} at {IMAGE_SIZE}x{IMAGE_SIZE}, {rounds} round(s)")
        with tempfile.TemporaryDirectory() as workdir:
            report["throughput"] = run_part(report, lambda: bench_throughput(args.quick, rounds, Path(workdir)))
    if args.part in ("digits", "all"):
        print("\n(b) digits learning check")
        report["digits"] = run_part(report, lambda: bench_digits(args.quick, args.seed))
    report["targets"] = targets(report)
    if "throughput" in report:
        print(f"\n## (a) inference, batch {BATCH} at {IMAGE_SIZE}x{IMAGE_SIZE}, random weights, {THREADS} threads")
        print(throughput_table(report["throughput"]) + load_line(report["throughput"]))
        print("\n## where MambaVision-T spends its time\n" + profile_table(report["throughput"]["profile"]))
    if "digits" in report:
        print(
            "\n## (b) digits (sklearn), held-out 20%, Trainer on CPU\n"
            + digits_table(report["digits"])
            + load_line(report["digits"])
        )
        print(f"recipe: {json.dumps(report['digits']['recipe'])}")
    print("\n## targets" + (" (quick run: digits trained for only a few epochs)" if args.quick else ""))
    for name, verdict in report["targets"].items():
        print(f"- {name}: {verdict['value']:.3f}{verdict['unit']} -> {'met' if verdict['met'] else 'NOT met'}")
    write_report(report, output)
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
