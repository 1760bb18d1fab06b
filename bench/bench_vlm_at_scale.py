"""VLM-Mamba at the scale its users train: the 130M Mamba LM (state-spaces/mamba-130m-hf) + MambaVision-T
(nvidia/MambaVision-T-1K), built from folders in the published layouts (random weights, `tools/
make_published_layouts.py --size real`, nothing downloaded) with `VLMambaProcessor.from_pretrained_parts` and
`VLMambaForConditionalGeneration.from_pretrained_parts`: its parameters, and one training step's time and peak
memory on this CPU (224-pixel images → 49 image tokens, a short VQA prompt and answer, AdamW) with Cobra's recipe
(tower frozen: `--recipe cobra`, with and without its gradient checkpointing) and with full fine-tuning.

One process, 2 threads, started with MEMORY_WORKER_ENV (it re-executes itself so) so that the RSS follows the live
tensors. Per setting: WARMUP_STEPS untimed steps, then `--steps` timed ones (the median is reported); `peak_rss_mb`
is the process's RSS high-water mark over the timed steps (model, gradients and AdamW's two moments included),
`step_added_mb` what a step adds at its peak over the RSS before it.

Usage: python bench/bench_vlm_at_scale.py [--batch 2] [--steps 2] [--output bench/results/bench_vlm_at_scale.json]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import MEMORY_WORKER_ENV, THREADS, current_rss_mb, machine, peak_rss_mb, reset_peak_rss, write_json

ROOT = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 3
PROMPT, ANSWER = "<image>Question: what is the animal in the picture doing? Answer:", "it is sleeping on a sofa"
SETTINGS = {  # name: (frozen parts, gradient checkpointing)
    "cobra (tower frozen)": (("vision_tower",), False),
    "cobra + gradient checkpointing": (("vision_tower",), True),
    "full fine-tuning": ((), False),
}


def layouts_module():
    spec = importlib.util.spec_from_file_location(
        "make_published_layouts", ROOT / "tools" / "make_published_layouts.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(folder: Path):
    """(model, processor) from the real-size published layouts written into `folder`."""
    from mamba_multimodal import VLMambaForConditionalGeneration, VLMambaProcessor

    vision, language = layouts_module().write_published_layouts(folder, size="real")
    processor = VLMambaProcessor.from_pretrained_parts(vision, language)
    return VLMambaForConditionalGeneration.from_pretrained_parts(vision, language, processor=processor), processor


def training_batch(processor, batch: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(batch)]
    return processor(images=images, text=[PROMPT] * batch, answers=[ANSWER] * batch, return_tensors="pt")


def measure(model, inputs, frozen: tuple[str, ...], checkpointing: bool, steps: int) -> dict:
    import torch

    from mamba_multimodal.training.flow import freeze

    model.requires_grad_(True)
    freeze(model, frozen)
    if checkpointing:
        model.gradient_checkpointing_enable()
    else:
        model.gradient_checkpointing_disable()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-5, weight_decay=0.1)

    def step():
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    for _ in range(WARMUP_STEPS):  # AdamW's moments are allocated in the first; the first setting's first steps
        step()  # ran 3-5x slower than the later ones (24.5, 14.0, then 4.7 s), so more than one is left untimed
    before = current_rss_mb()
    reset_peak_rss()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {
        "trainable_parameters": sum(p.numel() for p in trainable),
        "step_s": statistics.median(times),
        "step_times_s": times,
        "peak_rss_mb": peak_rss_mb(),
        "step_added_mb": peak_rss_mb() - before,
    }
    for module in model.modules():  # the freezing hooks: the next setting starts from a plain model
        module._forward_pre_hooks.clear()
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "bench_vlm_at_scale.json"))
    arguments = parser.parse_args()
    wanted_env = {**MEMORY_WORKER_ENV, "OMP_NUM_THREADS": str(THREADS)}
    if any(os.environ.get(key) != value for key, value in wanted_env.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **wanted_env})

    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    report = {"machine": machine(), "load_average_1min_before": os.getloadavg()[0], "batch": arguments.batch}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model, processor = build(Path(folder))
        report["build_from_parts_s"] = time.perf_counter() - start
    inputs = training_batch(processor, arguments.batch)
    parts = {"vision tower": model.model.vision_tower, "projector": model.model.multi_modal_projector,
             "language model (tied head)": model.model.language_model}  # fmt: skip
    report["parameters"] = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    report["parameters"]["total"] = sum(p.numel() for p in model.parameters())
    report["sequence"] = {"length": inputs["input_ids"].shape[1], "image_tokens": model.config.image_seq_length,
                          "pixel_values": list(inputs["pixel_values"].shape)}  # fmt: skip
    rows = model.config.text_config.vocab_size
    report["vocabulary"] = {"tokenizer": len(processor.tokenizer), "embedding_rows": rows,
                            "image_token_id": model.config.image_token_id}  # fmt: skip
    report["settings"] = {}
    for name, (frozen, checkpointing) in SETTINGS.items():
        report["settings"][name] = measure(model, inputs, frozen, checkpointing, arguments.steps)
    model.eval()
    prompt = processor(images=[processor_image()], text=[PROMPT], return_tensors="pt")
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(**prompt, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    report["generate_8_tokens_s"] = time.perf_counter() - start
    report["load_average_1min_after"] = os.getloadavg()[0]
    write_json(report, arguments.output)
    print_report(report)


def processor_image():
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8))


def print_report(report: dict) -> None:
    info = report["machine"]
    print(f"CPU: {info['cpu']} ({info['cores']} cores, {info['threads']} threads used); flags: "
          f"{' '.join(info['cpu_flags'])}")  # fmt: skip
    print(
        f"1-min load average: {report['load_average_1min_before']:.2f} before, "
        f"{report['load_average_1min_after']:.2f} after; torch {info['torch']}, transformers {info['transformers']}"
    )
    print("parameters: " + ", ".join(f"{name} {count / 1e6:.1f} M" for name, count in report["parameters"].items()))
    sequence = report["sequence"]
    print(
        f"batch {report['batch']} × {sequence['length']} tokens ({sequence['image_tokens']} image tokens), "
        f"pixel_values {sequence['pixel_values']}; built from the parts in {report['build_from_parts_s']:.0f} s"
    )
    print()
    print("| setting | trainable | step (s) | peak RSS (MB) | step adds (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report["settings"].items():
        print(f"| {name} | {row['trainable_parameters'] / 1e6:.1f} M | {row['step_s']:.2f} | "
              f"{row['peak_rss_mb']:.0f} | {row['step_added_mb']:.0f} |")  # fmt: skip
    print(f"\ngenerate 8 tokens (batch 1, 224 px): {report['generate_8_tokens_s']:.2f} s")


if __name__ == "__main__":
    main()
