"""bf16 against float32 on this CPU: a training step and an inference call of every family, in one run, on 2 threads.

Models (random weights, but the demo's base; the sizes the other benchmarks use):
    mambavision-tiny   MambaVision's test preset (`mambavision-tiny-test`), 64×64 images, batch 32, classification
    mambavision-t      MambaVision-T (`mambavision-t`), 224×224, batch 4 (training) and 8 (inference, as
                       bench_mambavision.py)
    vlm-demo           the demo's step: the shipped VLM-Mamba base (`training.demo.base_model_path()`) with its LoRA
                       preset, batch 64 of a 64×64 image and 16 text tokens, labels on every token
    vision-mamba       VisionMamba (VLM-Mamba's default tower) at its default size, batch 64
    coupled-mosei      Coupled Mamba at the paper's MOSEI size (bench_coupled.py: width 128, 3 layers), L = 50, batch 32
    mamba-lm           the Mamba LM of bench_vlm.py's VLM (width 512, 8 layers, vocab 4096), batch 8 × 128 tokens
Each is timed as
    train   one step: forward (and loss) under the precision, backward outside it (torch's AMP recipe, Trainer's),
            AdamW on the trainable parameters; float32 | bf16 autocast
    infer   one forward under torch.inference_mode(); float32 | bf16 autocast | bf16 weights (`model.bfloat16()`)
and every bf16 row twice where the CPU has no native bf16: with this package's policy (`modeling.precision`: what a
user gets) and with it forced off (what torch alone does on this CPU). `bf16 / fp32` is float32's time over bf16's:
1.0 or more means bf16 is no slower. Target: >= 1.0 on every CPU (policy on), >= 1.5 where matmuls dominate on a CPU
with native bf16 (AVX512-BF16, AMX-BF16). Each row: the median of `--repeats` timed calls after a warm-up call; a
model's rows under the policy are timed round-robin (one call of each per round), so that a drift of the machine's
speed hits float32 and bf16 alike; a call of torch alone in bf16 that takes more than SLOW_CALL_S (a CPU without
native bf16) is timed once.

Usage: python bench/bench_dtype.py [--quick] [--repeats N] [--models NAME ...] [--output PATH]
Full runs write bench/results/bench_dtype.json; --quick (tiny configs, one call per row, no warm-up: the test) writes
to the system temp folder unless --output is given. The 1-minute load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
from common import THREADS, machine, write_json

RESULTS = Path(__file__).parent / "results" / "bench_dtype.json"
SLOW_CALL_S = 5.0
MODELS = ("mambavision-tiny", "mambavision-t", "vlm-demo", "vision-mamba", "coupled-mosei", "mamba-lm")
TEXT_TOKENS = 16  # the demo's questions are about this long
ROWS = [("train", "fp32"), ("train", "bf16-autocast"), ("infer", "fp32"), ("infer", "bf16-autocast"),
        ("infer", "bf16-weights")]  # fmt: skip
QUICK_FAMILIES = {"mambavision-tiny": "mambavision", "mambavision-t": "mambavision", "vlm-demo": "vlm_mamba",
                  "vision-mamba": "vision_mamba", "coupled-mosei": "coupled_mamba", "mamba-lm": "mamba"}  # fmt: skip


# -------------------------------------------------------------------------------------------- models and inputs
def build(name: str, quick: bool):
    """(model, training inputs, inference batch size) with random weights (the demo: its shipped base)."""
    import torch
    from transformers import MambaConfig

    from mamba_multimodal import (
        CoupledMambaConfig,
        CoupledMambaForSequenceClassification,
        MambaForCausalLM,
        MambaVisionConfig,
        MambaVisionForImageClassification,
        VisionMambaConfig,
        VisionMambaModel,
        VLMambaForConditionalGeneration,
    )
    from mamba_multimodal.registry import FAMILIES

    torch.manual_seed(0)
    if quick:  # the registry's tiny test configs, batch 2
        family = QUICK_FAMILIES[name]
        config, batch, length = FAMILIES[family].tiny_config(), 2, 6
    if name.startswith("mambavision"):
        if not quick:
            preset = "mambavision-tiny-test" if name == "mambavision-tiny" else "mambavision-t"
            config = MambaVisionConfig.from_preset(preset)
        model = MambaVisionForImageClassification(config)
        batch = batch if quick else 32 if name == "mambavision-tiny" else 4
        return model, image_inputs(batch, config.image_size, config.num_labels), batch if quick else 2 * batch
    if name == "vlm-demo":
        if quick:
            model = VLMambaForConditionalGeneration(config)
        else:
            from mamba_multimodal.training import get_lora_model
            from mamba_multimodal.training.demo import base_model_path

            model = get_lora_model(VLMambaForConditionalGeneration.from_pretrained(base_model_path()))
            batch = 64
        return model, vlm_inputs(model.config, batch, length if quick else TEXT_TOKENS), batch
    if name == "vision-mamba":
        model = VisionMambaModel(config if quick else VisionMambaConfig())
        batch = batch if quick else 64
        return model, {"pixel_values": torch.randn(batch, 3, model.config.image_size, model.config.image_size)}, batch
    if name == "coupled-mosei":
        if not quick:
            config = CoupledMambaConfig(input_sizes={"text": 768, "audio": 74, "vision": 35}, hidden_size=128,
                                  num_hidden_layers=3)  # fmt: skip
            batch, length = 32, 50
        model = CoupledMambaForSequenceClassification(config)
        sizes = zip(config.modalities, config.input_sizes, strict=True)
        inputs = {f"{modality}_features": torch.randn(batch, length, size) for modality, size in sizes}
        return model, {**inputs, "labels": torch.randn(batch)}, batch
    if name == "mamba-lm":
        if not quick:
            config = MambaConfig(vocab_size=4096, hidden_size=512, num_hidden_layers=8, state_size=16,
                                 use_mambapy=False)  # fmt: skip
            batch, length = 8, 128
        model = MambaForCausalLM(config)
        input_ids = torch.randint(3, config.vocab_size, (batch, length))
        return model, {"input_ids": input_ids, "labels": input_ids}, batch
    raise ValueError(f"unknown model {name!r}; known: {MODELS}")


def image_inputs(batch: int, size: int, num_labels: int) -> dict:
    import torch

    return {"pixel_values": torch.randn(batch, 3, size, size), "labels": torch.randint(0, num_labels, (batch,))}


def vlm_inputs(config, batch: int, text_tokens: int) -> dict:
    """The image's tokens, then text; labels on every text token (image tokens are never targets)."""
    import torch

    size = config.vision_config.image_size
    image = torch.full((batch, config.image_seq_length), config.image_token_id)
    text = torch.randint(5, config.text_config.vocab_size, (batch, text_tokens))
    input_ids = torch.cat([image, text], dim=1)
    return {"pixel_values": torch.randn(batch, 3, size, size), "input_ids": input_ids, "labels": input_ids}


def loss_of(output):
    """The model's loss, else a fixed function of its last hidden state (VisionMamba has no head)."""
    return output.loss if getattr(output, "loss", None) is not None else output.last_hidden_state.float().pow(2).mean()


def batch_of(inputs: dict, size: int) -> dict:
    """The first `size` rows of every input (without labels: inference)."""
    return {name: value[:size] for name, value in inputs.items() if name != "labels"}


# ------------------------------------------------------------------------------------------------- timing
def median_call_seconds(call, repeats: int, warmup: bool = True, cap: bool = False) -> tuple[float, int]:
    """(median seconds, calls timed) of `call()` after a warm-up call. With `cap` (torch alone in bf16 on a CPU
    without native bf16, which would otherwise take minutes), a warm-up slower than SLOW_CALL_S is the one timing.
    Without `warmup` (the quick run), `repeats` calls, the first one included."""
    times = []
    while len(times) < repeats + warmup:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        if warmup and cap and times[0] > SLOW_CALL_S:
            return times[0], 1
    return statistics.median(times[warmup:]), repeats


def train_step(model, inputs: dict, precision: str):
    """A callable running one training step; `precision` "fp32" or "bf16-autocast"."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = precision == "bf16-autocast"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(model(**inputs))
        loss.backward()
        optimizer.step()

    return step


def infer_call(model, inputs: dict, precision: str):
    """A callable running one forward; `precision` "fp32", "bf16-autocast" or "bf16-weights"."""
    import torch

    if precision == "bf16-weights":
        model = copy.deepcopy(model).bfloat16()

    def infer():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-autocast"):
            model(**inputs)

    return infer


def policy(enabled: bool):
    """The package's policy as is, or forced off (every CPU treated as having native bf16: torch alone)."""
    from mamba_multimodal.modeling import precision

    return nullcontext() if enabled else mock.patch.object(precision, "has_native_bf16", lambda: True)


def interleaved_median_seconds(calls: list, repeats: int, warmup: bool = True) -> list[float]:
    """The median seconds of each of `calls`, timed round-robin: every round times each call once, starting one later
    than the round before, after one warm-up call each (none in the quick run). This machine's speed drifts by 1.2-1.5x
    over minutes, so calls timed one after the other in blocks would compare different machines."""
    if warmup:
        for call in calls:
            call()
    times = [[] for _ in calls]
    for round_index in range(repeats):
        for offset in range(len(calls)):
            index = (round_index + offset) % len(calls)
            start = time.perf_counter()
            calls[index]()
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def row_call(model, inputs: dict, infer_batch: int, kind: str, precision: str):
    """The callable of one row; each training row from the same initial weights."""
    import torch

    torch.manual_seed(0)
    if kind == "train":
        return train_step(copy.deepcopy(model).train(), inputs, precision)
    return infer_call(model.eval(), batch_of(inputs, infer_batch), precision)


def measure(name: str, quick: bool, repeats: int, native: bool) -> list[dict]:
    """Every (kind, precision, policy) row of one model. The rows under the policy (what a user gets) are timed
    interleaved, so that their ratios to float32 hold on a drifting machine; torch alone (policy off) after them."""
    model, inputs, infer_batch = build(name, quick)
    calls = [row_call(model, inputs, infer_batch, kind, precision) for kind, precision in ROWS]
    seconds = interleaved_median_seconds(calls, repeats, warmup=not quick)
    rows = [{"model": name, "kind": kind, "precision": precision, "seconds": s, "timed_calls": repeats, "policy": "on"}
            for (kind, precision), s in zip(ROWS, seconds, strict=True)]  # fmt: skip
    del calls
    for kind, precision in [] if native else [row for row in ROWS if row[1] != "fp32"]:
        with policy(False):
            call = row_call(model, inputs, infer_batch, kind, precision)
            s, timed = median_call_seconds(call, repeats, warmup=not quick, cap=True)
        rows.append({"model": name, "kind": kind, "precision": precision, "seconds": s, "timed_calls": timed,
                     "policy": "off (torch alone)"})  # fmt: skip
    rows.sort(key=lambda row: (ROWS.index((row["kind"], row["precision"])), row["policy"] != "on"))
    for row in rows:
        print(f"  {name} {row['kind']} {row['precision']}, policy {row['policy']}: {row['seconds']:.3f} s", flush=True)
    fp32 = {row["kind"]: row["seconds"] for row in rows if row["precision"] == "fp32"}
    for row in rows:
        row["bf16_over_fp32"] = fp32[row["kind"]] / row["seconds"]
    return rows


# ------------------------------------------------------------------------------------------------- report
def print_table(report: dict) -> None:
    info = report["machine"]
    print(f"\nCPU: {info['cpu']}; flags: {' '.join(info['cpu_flags'])}")
    print(f"native bf16: {report['native_bf16'] or 'none (no ' + ' / '.join(report['native_bf16_wanted']) + ')'}; "
          f"{info['threads']} threads; torch {info['torch']}; load average before/after: "
          f"{report['load_average_before'][0]:.2f} / {report['load_average_after'][0]:.2f}")  # fmt: skip
    print("\n| model | step | precision | policy | seconds | bf16 / fp32 |")
    print("|---|---|---|---|---:|---:|")
    for row in report["rows"]:
        ratio = "" if row["precision"] == "fp32" else f"{row['bf16_over_fp32']:.2f}x"
        once = " (1 call)" if row["timed_calls"] == 1 and report["repeats"] > 1 else ""
        print(f"| {row['model']} | {row['kind']} | {row['precision']} | {row['policy']} | {row['seconds']:.3f}{once} "
              f"| {ratio} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny configs, one call per row without warm-up (the test)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 3; --quick 1)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="default: all")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from mamba_multimodal.modeling import precision

    torch.set_num_threads(THREADS)
    repeats = args.repeats or (1 if args.quick else 3)
    output = args.output or (Path(tempfile.gettempdir()) / "bench_dtype.json" if args.quick else RESULTS)
    native = precision.has_native_bf16()
    report = {"machine": machine(), "quick": args.quick, "repeats": repeats, "slow_call_s": SLOW_CALL_S,
              "native_bf16": list(precision.native_bf16_flags()),
              "native_bf16_wanted": list(precision.NATIVE_BF16_FLAGS.get(precision.architecture(), ())),
              "load_average_before": os.getloadavg(), "rows": []}  # fmt: skip
    for name in args.models:
        report["rows"] += measure(name, args.quick, repeats, native)
    report["load_average_after"] = os.getloadavg()
    write_json(report, output)
    print_table(report)
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
