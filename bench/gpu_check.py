"""The GPU check, prepared on CPU: on a machine with a CUDA GPU it loads (or builds) mamba-ssm's and causal-conv1d's
kernels, checks that every family gives the same numbers on the "cuda" path as on the CPU path, and times a training
step of a Cobra-class VLM (mamba-130m-shaped LM, MambaVision-T-shaped tower) in bfloat16 on the "cuda" path against
the "pytorch" path (plain PyTorch on the GPU). Prints a table and the GPU's name, and writes JSON.

    python bench/gpu_check.py                 # a GPU with the kernels built (README, "GPU kernels")
    python bench/gpu_check.py --build         # builds them first (pip, nvcc, against the installed torch), then checks
    python bench/gpu_check.py --dry-run       # CPU, tiny sizes: the same steps, "pytorch" in the place of "cuda"

(a) numerics: each model class of each family (`registry.FAMILIES`, its tiny config, weights moved off their init),
    float32, on the GPU against a CPU copy: outputs and parameter gradients of one forward/backward; for the LMs and
    the VLM greedy `generate` (tokens and scores: the prefill scan, then the step kernels in place on the cache); for
    Coupled Mamba a continuation stepped through fully padded steps (causal_conv1d_update). Max |diff| against
    ATOL + RTOL·|cpu|, and how often each kernel ran.
(b) training step: batch 8, 49 image tokens + 128 text tokens, vision tower frozen (Cobra's recipe), AdamW, bf16
    autocast; median of the timed steps and peak GPU memory, on "cuda" and on "pytorch".
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import machine, write_json

ATOL, RTOL = 1e-4, 1e-3  # float32, the kernels against the CPU path: other summation orders, a few layers deep
BUILD_ENV = {"MAMBA_FORCE_BUILD": "TRUE", "MAMBA_KEEP_CUDA_BUILD": "TRUE", "CAUSAL_CONV1D_FORCE_BUILD": "TRUE"}
NEW_TOKENS = 4
# mamba-130m (state-spaces/mamba-130m-hf's config.json) as the LM; MambaVision-T (nvidia/MambaVision-T-1K) as the tower.
MAMBA_130M = {"vocab_size": 50280, "hidden_size": 768, "num_hidden_layers": 24, "state_size": 16, "expand": 2,
              "conv_kernel": 4, "time_step_rank": 48, "residual_in_fp32": True, "use_mambapy": False}  # fmt: skip
FULL_STEP = {"batch": 8, "text_tokens": 128, "warmup": 3, "steps": 10}
DRY_STEP = {"batch": 2, "text_tokens": 8, "warmup": 1, "steps": 2}


# ---------------------------------------------------------------------------------------------- kernels
def build_kernels() -> None:
    """pip-builds mamba-ssm and causal-conv1d against the installed torch (no build isolation: a fresh torch from
    the index would be built against instead)."""
    command = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "mamba-ssm", "causal-conv1d"]
    print("building:", " ".join(command), flush=True)
    environment = {key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"}
    subprocess.run(command, check=True, env={**environment, **BUILD_ENV})


def count_kernel_calls(ops) -> dict[str, int]:
    """Wraps every op of `ssm.cuda_kernels()` to count its calls; the returned dict fills as they run."""
    counts = {}
    for name, function in vars(ops).items():
        if function is None:
            continue
        counts[name] = 0

        def counted(*args, _name=name, _function=function, **kwargs):
            counts[_name] += 1
            return _function(*args, **kwargs)

        setattr(ops, name, counted)
    return counts


# ------------------------------------------------------------------------------------------- (a) numerics
def set_scan_backend(model, backend: str) -> None:
    for config in [model.config, *(getattr(model.config, name) for name in getattr(model.config, "sub_configs", {}))]:
        if config is not None:
            config.scan_backend = backend


def tiny_model(family, model_class):
    torch.manual_seed(0)
    model = model_class(family.tiny_config()).eval()
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():  # off the init (A_log, D, biases too), so that the state matters for the outputs
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))
    return model


def tiny_inputs(model_class, config, batch: int = 2, length: int = 6) -> dict:
    """Random inputs as `model_class.forward` takes them (the families' test inputs): pixels, text after the image
    tokens, per-modality features; a padded tail on the second row; labels."""
    generator = torch.Generator().manual_seed(1)
    accepted = inspect.signature(model_class.forward).parameters
    inputs = {}
    if "pixel_values" in accepted:
        size = getattr(config, "vision_config", config).image_size
        inputs["pixel_values"] = torch.randn(batch, 3, size, size, generator=generator)
    if "input_ids" in accepted:
        vocab = config.get_text_config(decoder=True).vocab_size
        text = torch.randint(3, vocab - 1, (batch, length), generator=generator)
        if getattr(config, "image_token_id", None) is not None and hasattr(model_class, "get_image_features"):
            text = torch.cat([torch.full((batch, config.image_seq_length), config.image_token_id), text], dim=1)
        inputs["input_ids"] = text
        inputs["attention_mask"] = torch.ones_like(text)
        inputs["attention_mask"][1, -2:] = 0
    for modality, size in zip(getattr(config, "modalities", ()), getattr(config, "input_sizes", ()), strict=True):
        inputs[f"{modality}_features"] = torch.randn(batch, length, size, generator=generator)
    if "labels" in accepted:
        if model_class.can_generate():
            inputs["labels"] = inputs["input_ids"].clone()
        else:
            inputs["labels"] = torch.randint(0, config.num_labels, (batch,), generator=generator)
    return inputs


def float_tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in float_tensors(item)]
    return []


def forward_backward(model, inputs: dict) -> list[torch.Tensor]:
    """Every float output, then every parameter's gradient, of one forward/backward (on CPU, for comparing)."""
    model.zero_grad()
    output = model(**inputs)
    loss = output.loss if getattr(output, "loss", None) is not None else sum(t.sum() for t in float_tensors(output))
    loss.backward()
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    return [t.detach().float().cpu() for t in [*float_tensors(output), *gradients]]


def decode(model, inputs: dict) -> list[torch.Tensor]:
    """What a decode step gives: greedy tokens and scores for an LM, a stepped continuation's logits otherwise."""
    with torch.no_grad():
        if model.can_generate():
            prompt = {k: v for k, v in inputs.items() if k not in ("labels", "attention_mask")}  # no right padding
            out = model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0,
                                 return_dict_in_generate=True, output_scores=True)  # fmt: skip
            return [out.sequences.cpu(), *(score.float().cpu() for score in out.scores)]
        if "text_features" in inputs and hasattr(model, "classifier"):  # Coupled Mamba: steps through padded steps
            features = {k: v for k, v in inputs.items() if k.endswith("_features")}
            text = features["text_features"]
            mask = torch.ones(text.shape[:2], dtype=torch.long, device=text.device)
            mask[0, -3:-1] = 0
            both = {**features, **{k.replace("_features", "_attention_mask"): mask for k in features}}
            cache = model(**{k: v[:, :2] for k, v in both.items()}, use_cache=True).cache
            return [model(**{k: v[:, 2:] for k, v in both.items()}, cache=cache).logits.float().cpu()]
    return []


def max_excess(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> tuple[float, float]:
    """(max |diff|, max |diff| / (ATOL + RTOL·|expected|)): the check passes when the second is ≤ 1."""
    worst_diff, worst_ratio = 0.0, 0.0
    for a, e in zip(actual, expected, strict=True):
        if not a.is_floating_point():
            worst_ratio = max(worst_ratio, 0.0 if torch.equal(a, e) else float("inf"))
            continue
        diff = (a - e).abs()
        worst_diff = max(worst_diff, float(diff.max()) if diff.numel() else 0.0)
        worst_ratio = max(worst_ratio, float((diff / (ATOL + RTOL * e.abs())).max()) if diff.numel() else 0.0)
    return worst_diff, worst_ratio


def check_numerics(device: str, backend: str, counts: dict[str, int]) -> list[dict]:
    """Every model class of every family: (device, backend) against a CPU copy on the default CPU path."""
    from mamba_multimodal.registry import FAMILIES

    rows = []
    for family in FAMILIES.values():
        for model_class in dict.fromkeys(family.auto_models.values()):
            reference = tiny_model(family, model_class)
            inputs = tiny_inputs(model_class, reference.config)
            candidate = copy.deepcopy(reference).to(device)
            set_scan_backend(candidate, backend)
            on_device = {k: v.to(device) for k, v in inputs.items()}
            before = dict(counts)
            train = forward_backward(candidate, on_device), forward_backward(reference, inputs)
            train_diff, train_ratio = max_excess(*train)
            decode_diff, decode_ratio = max_excess(decode(candidate, on_device), decode(reference, inputs))
            rows.append({
                "family": family.name, "class": model_class.__name__,
                "forward_backward_max_diff": train_diff, "decode_max_diff": decode_diff,
                "ok": max(train_ratio, decode_ratio) <= 1.0,
                "kernel_calls": {name: counts[name] - before[name] for name in counts},
            })  # fmt: skip
    return rows


# -------------------------------------------------------------------------------------- (b) training step
def vlm_config(dry_run: bool):
    from mamba_multimodal import VLMambaConfig
    from mamba_multimodal.configuration.configuration_mambavision import MambaVisionConfig
    from mamba_multimodal.registry import FAMILIES

    if dry_run:
        return FAMILIES["vlm_mamba"].tiny_config("mambavision-tower")
    tower = MambaVisionConfig.from_preset("mambavision-t").to_dict()
    return VLMambaConfig(vision_config={**tower, "model_type": "mambavision"}, text_config=MAMBA_130M)


def time_training_step(config, device: str, backend: str, sizes: dict) -> dict:
    """Median wall time of an AdamW step (bf16 autocast, tower frozen) and the peak GPU memory it took."""
    from mamba_multimodal import VLMambaForConditionalGeneration

    torch.manual_seed(0)
    model = VLMambaForConditionalGeneration(copy.deepcopy(config)).to(device).train()
    set_scan_backend(model, backend)
    model.model.vision_tower.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch, vocab = sizes["batch"], config.text_config.vocab_size
    image = torch.full((batch, config.image_seq_length), config.image_token_id)
    input_ids = torch.cat([image, torch.randint(3, vocab - 1, (batch, sizes["text_tokens"]))], dim=1).to(device)
    labels = input_ids.masked_fill(input_ids == config.image_token_id, -100)
    size = config.vision_config.image_size
    pixel_values = torch.randn(batch, 3, size, size, device=device)

    def step() -> float:
        synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = model(input_ids=input_ids, pixel_values=pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        return time.perf_counter() - start

    for _ in range(sizes["warmup"]):
        step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = [step() for _ in range(sizes["steps"])]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    parameters = sum(p.numel() for p in model.parameters())
    path = {"auto": "cuda" if device == "cuda" else "cpu"}.get(backend, backend)
    return {"path": path, "step_s": statistics.median(times), "peak_gib": peak, "parameters": parameters}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------------- main
def print_report(report: dict) -> None:
    print(f"\ndevice: {report['device']}; kernels: {report['kernels']}")
    print("\n(a) the 'cuda' path against the CPU path, float32 (ok: |diff| <= ATOL + RTOL·|cpu| everywhere)")
    print("| family | class | fwd+bwd max |diff| | decode max |diff| | kernel calls | ok |")
    print("|---|---|---|---|---|---|")
    for row in report["numerics"]:
        calls = ", ".join(f"{name} {count}" for name, count in row["kernel_calls"].items() if count) or "-"
        print(f"| {row['family']} | {row['class']} | {row['forward_backward_max_diff']:.2e} | "
              f"{row['decode_max_diff']:.2e} | {calls} | {'yes' if row['ok'] else 'NO'} |")  # fmt: skip
    sizes = report["training_step"]["sizes"]
    print(f"\n(b) VLM training step, bf16 autocast, batch {sizes['batch']}, {report['training_step']['tokens']} "
          f"tokens, {report['training_step']['parameters'] / 1e6:.1f} M parameters, tower frozen")  # fmt: skip
    print("| path | step (s) | peak memory (GiB) |")
    print("|---|---|---|")
    for row in report["training_step"]["runs"]:
        peak = "-" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}"
        print(f"| {row['path']} | {row['step_s']:.3f} | {peak} |")
    first, second = (row["path"] for row in report["training_step"]["runs"])
    print(f"'{first}' is {report['training_step']['speedup']:.2f}× as fast as '{second}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, 'pytorch' in the place of 'cuda'")
    parser.add_argument("--build", action="store_true", help="pip-build mamba-ssm and causal-conv1d first")
    parser.add_argument("--output", default=None, help="JSON path (default bench/results/gpu_check[_dry_run].json)")
    args = parser.parse_args(argv)
    from mamba_multimodal.modeling import ssm

    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run on a GPU machine, or pass --dry-run")
    if args.build:
        build_kernels()  # a new process: cuda_kernels() caches what the first import found
        again = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--build"]
        return subprocess.run([sys.executable, __file__, *again], check=False).returncode
    ops = ssm.cuda_kernels()
    if not args.dry_run and (ops is None or None in (ops.selective_scan, ops.state_update, ops.conv1d_update)):
        parser.error(f"the compiled kernels do not all import (found {ops}): pass --build, see README 'GPU kernels'")
    counts = count_kernel_calls(ops) if ops is not None else {}
    device, backend = ("cpu", "pytorch") if args.dry_run else ("cuda", "auto")
    config = vlm_config(args.dry_run)
    sizes = DRY_STEP if args.dry_run else FULL_STEP
    runs = [time_training_step(config, device, b, sizes) for b in (backend, "pytorch" if not args.dry_run else "auto")]
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run)",
        "kernels": sorted(name for name, function in vars(ops or argparse.Namespace()).items() if function),
        "machine": machine(),
        "numerics": check_numerics(device, backend, counts),
        "training_step": {
            "sizes": sizes, "tokens": config.image_seq_length + sizes["text_tokens"],
            "parameters": runs[0]["parameters"], "runs": runs, "speedup": runs[1]["step_s"] / runs[0]["step_s"],
        },
    }  # fmt: skip
    print_report(report)
    default = f"bench/results/gpu_check{'_dry_run' if args.dry_run else ''}.json"
    print(f"\nwrote {write_json(report, Path(args.output or default))}")
    return 0 if all(row["ok"] for row in report["numerics"]) else 1


if __name__ == "__main__":
    sys.exit(main())
