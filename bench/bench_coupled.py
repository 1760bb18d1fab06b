"""Coupled Mamba benchmark: inference cost against cross-modal attention, stability and a learning check, on 2 threads.

(a) Inference (forward only, eval mode, no gradients) of `CoupledMambaForSequenceClassification` at the paper's MOSEI
    size (width 128, state 64, 3 layers, text 768 / audio 74 / vision 35 features, batch 32; the default
    `inference_chunk_tokens`) against a MulT-style cross-modal attention fusion model of the same width and depth,
    written below with torch.nn: for every ordered pair of modalities (source → target) 3 transformer layers whose
    queries come from the target and keys/values from the source, then per target 3 self-attention layers over the
    concatenated streams (MulT's "memory"), the last step of every target, and a 2-layer head. Two attention
    kernels: "explicit" forms softmax(QKᵀ/√d)·V with the (l × l) weights in memory, as MulT's released code does
    (and as the paper's cross-attention baseline must have: its memory grows 9.3× from L = 100 to 500); "SDPA" is
    F.scaled_dot_product_attention, whose fused CPU kernel never holds the (l × l) weights: the stronger baseline.
    Every (model, L) runs in fresh subprocesses. Time: the median of repeated calls after a warm-up call. Memory,
    in a second process started with glibc's mmap threshold fixed at 64 KiB (so the RSS follows live tensors):
    what the RSS grows by at its peak during one call after a warm-up call (`inference_mb`); also the process's
    whole peak RSS from the timing run (VmHWM, `peak_rss_mb`: Python, torch, model, inputs and all).
(b) Stability of the coupling: the untrained MOSEI-size model on random MOSEI-shaped inputs at L = 50 and 500; the
    largest hidden value and whether the logits are finite, per coupling.
(c) Learning check on generated clips in the MOSEI layout (aligned, text 768 / audio 74 / vision 35 features, all
    N(0, 1)) whose label is a cross-modal temporal interaction: in 16 channels the audio echoes the text δ = 2 steps
    later with a clip-specific correlation ρ ~ U(-1, 1), and the label is 3ρ, i.e. the sign and strength of (text at
    an early step) × (audio at a later step). Each modality alone is white noise whatever ρ is, so a model has to
    relate the two streams across time. "sum", "mean" and "none" couplings with everything else equal (seed, the
    same stream of fresh training batches, optimiser, 700 steps of 64 clips, L1 loss as the paper); held-out MAE,
    Corr and Acc-2 from `training.metrics.sentiment_metrics` on 1,000 clips.

Usage: python bench/bench_coupled.py [--quick] [--output bench/results/bench_coupled.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MEMORY_WORKER_ENV, THREADS, machine, peak_rss_mb, steady_call_memory_mb, time_calls, write_json

LENGTHS = (50, 100, 500, 1000)
BATCH = 32
MOSEI_SIZES = {"text": 768, "audio": 74, "vision": 35}
WIDTH, LAYERS, HEADS = 128, 3, 8
MODELS = {
    "coupled": "Coupled Mamba (ours)",
    "attention": "cross-modal attention, explicit (MulT)",
    "attention_sdpa": "cross-modal attention, SDPA",
}


# ---------------------------------------------------------------------------------------- the baseline
def build_attention_baseline(fused: bool = False):
    """MulT-style cross-modal attention fusion (Tsai et al., ACL 2019) at width 128, 3 + 3 layers, 8 heads; `fused`
    attends with F.scaled_dot_product_attention, else with explicit softmax(QKᵀ/√d)·V as MulT's code."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class AttentionLayer(nn.Module):
        """Pre-LN transformer layer: queries from `target`, keys and values from `source` (default: `target`)."""

        def __init__(self, width: int):
            super().__init__()
            self.heads = HEADS
            self.norm_query, self.norm_source, self.norm_ff = (
                nn.LayerNorm(width),
                nn.LayerNorm(width),
                nn.LayerNorm(width),
            )
            self.query, self.key_value, self.out = (
                nn.Linear(width, width),
                nn.Linear(width, 2 * width),
                nn.Linear(width, width),
            )
            self.ff = nn.Sequential(nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width))  # fmt: skip

        def split_heads(self, x):  # (b, l, w) → (b, heads, l, w / heads)
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        def forward(self, target, source=None):
            source = target if source is None else source
            query = self.split_heads(self.query(self.norm_query(target)))
            key, value = self.key_value(self.norm_source(source)).chunk(2, dim=-1)
            key, value = self.split_heads(key), self.split_heads(value)
            if fused:
                attended = F.scaled_dot_product_attention(query, key, value)
            else:  # (b, heads, l, l) weights in memory
                weights = torch.softmax(query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1]), dim=-1)
                attended = weights @ value
            target = target + self.out(attended.transpose(1, 2).flatten(2))
            return target + self.ff(self.norm_ff(target))

    class CrossModalAttentionBaseline(nn.Module):
        def __init__(self):
            super().__init__()
            names = list(MOSEI_SIZES)
            self.pairs = [(source, target) for target in names for source in names if source != target]
            self.projections = nn.ModuleDict({m: nn.Linear(size, WIDTH) for m, size in MOSEI_SIZES.items()})
            self.crossmodal = nn.ModuleDict(
                {f"{s}_to_{t}": nn.ModuleList(AttentionLayer(WIDTH) for _ in range(LAYERS)) for s, t in self.pairs}
            )
            memory = (len(names) - 1) * WIDTH
            self.memory = nn.ModuleDict(
                {t: nn.ModuleList(AttentionLayer(memory) for _ in range(LAYERS)) for t in names}
            )
            fused = len(names) * memory
            self.head = nn.Sequential(nn.Linear(fused, fused), nn.ReLU(), nn.Linear(fused, 1))

        @staticmethod
        def positions(length, width):
            position = torch.arange(length)[:, None]
            frequency = torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width))
            table = torch.zeros(length, width)
            table[:, 0::2], table[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
            return table

        def forward(self, **features):
            length = next(iter(features.values())).shape[1]
            positions = self.positions(length, WIDTH)
            streams = {m: math.sqrt(WIDTH) * self.projections[m](features[f"{m}_features"]) + positions
                       for m in MOSEI_SIZES}  # fmt: skip
            fused = []
            for target in MOSEI_SIZES:
                crossed = []
                for source in MOSEI_SIZES:
                    if source == target:
                        continue
                    hidden = streams[target]
                    for layer in self.crossmodal[f"{source}_to_{target}"]:
                        hidden = layer(hidden, streams[source])
                    crossed.append(hidden)
                hidden = torch.cat(crossed, dim=-1)
                for layer in self.memory[target]:
                    hidden = layer(hidden)
                fused.append(hidden[:, -1])
            return self.head(torch.cat(fused, dim=-1))

    return CrossModalAttentionBaseline()


def build_coupled(**overrides):
    from mamba_multimodal import CoupledMambaConfig, CoupledMambaForSequenceClassification

    settings = {"input_sizes": MOSEI_SIZES, "hidden_size": WIDTH, "num_hidden_layers": LAYERS, **overrides}
    config = CoupledMambaConfig(**settings)
    return CoupledMambaForSequenceClassification(config)


def mosei_inputs(batch: int, length: int, seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return {f"{m}_features": torch.randn(batch, length, size, generator=generator) for m, size in MOSEI_SIZES.items()}


# ------------------------------------------------------------------------------------ (a) inference cost
def inference_worker(kind: str, length: int, repeats: int, measure: str) -> dict:
    """Runs in a fresh process: times inference (measure="time") or measures its memory (measure="memory")."""
    import torch

    import mamba_multimodal  # noqa: F401  (every worker starts from the same imports)

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build_coupled() if kind == "coupled" else build_attention_baseline(fused=kind == "attention_sdpa")
    model.eval()
    inputs = mosei_inputs(BATCH, length)

    def infer():
        with torch.inference_mode():
            out = model(**inputs)
        logits = out.logits if hasattr(out, "logits") else out
        if not torch.isfinite(logits).all():
            raise RuntimeError(f"{kind} produced non-finite logits at L={length}")

    if measure == "memory":
        return {"inference_mb": steady_call_memory_mb(infer)}
    seconds = statistics.median(time_calls(infer, repeats=repeats))
    parameters = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "parameters": parameters}


def run_worker(kind: str, length: int, repeats: int, measure: str) -> dict:
    command = [sys.executable, __file__, "--worker", kind, str(length), str(repeats), measure]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), **(MEMORY_WORKER_ENV if measure == "memory" else {})}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{MODELS[kind]} at L={length} ({measure}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_inference(lengths, repeats) -> list[dict]:
    rows = []
    for length in lengths:
        for kind, name in MODELS.items():
            runs = repeats if length <= 500 else max(1, repeats - 1)
            measured = {**run_worker(kind, length, runs, "time"), **run_worker(kind, length, runs, "memory")}
            rows.append({"length": length, "model": name, **measured})
            print(
                f"  L={length:5d} {name:40s} {measured['seconds']:8.3f} s  inference +{measured['inference_mb']:.0f} MB"
                f"  (process peak RSS {measured['peak_rss_mb']:.0f} MB)",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------------------ (b) stability
def bench_stability(lengths=(50, 500)) -> list[dict]:
    """The untrained MOSEI-size model per coupling: largest |hidden| over layers and whether the logits are finite."""
    import torch

    rows = []
    for coupling in ("sum", "mean", "none"):
        torch.manual_seed(0)
        model = build_coupled(coupling=coupling).eval()
        for length in lengths:
            with torch.inference_mode():
                out = model(**mosei_inputs(4, length, seed=1), output_hidden_states=True)
            largest = float(torch.stack([h.abs().max() for h in out.hidden_states]).max())  # nan/inf stay visible
            finite = bool(torch.isfinite(out.logits).all())
            rows.append({"coupling": coupling, "length": length, "max_abs_hidden": largest, "finite_logits": finite})
            print(f"  {coupling:5s} L={length:4d} max|hidden| {largest:10.3e}  finite logits: {finite}", flush=True)
    return rows


# -------------------------------------------------------------------------------------- (c) learning check
TASK = {"length": 20, "delay": 2, "signal_channels": 16, "steps": 700, "batch": 64, "test": 1000, "lr": 3e-3}
TINY = {"hidden_size": 32, "state_size": 16, "num_hidden_layers": 2, "head_hidden_size": 32}


def interaction_batch(count: int, generator) -> tuple[dict, object]:
    """MOSEI-layout clips (all other channels N(0, 1) noise) whose audio echoes the text δ steps later with a
    clip-specific correlation ρ ~ U(-1, 1): text[t, :16] = u_{t+δ}, audio[t, :16] = ρ u_t + √(1-ρ²) e_t, so that
    audio[t] correlates with text[t-δ]. The label is 3ρ, the sign and strength of (text at an early step) × (audio
    δ steps later), on MOSEI's sentiment scale [-3, 3]. Each modality alone is white N(0, 1) noise whatever ρ is."""
    import torch

    length, delay, width = TASK["length"], TASK["delay"], TASK["signal_channels"]
    features = {
        f"{m}_features": torch.randn(count, length, size, generator=generator) for m, size in MOSEI_SIZES.items()
    }
    source = torch.randn(count, length + delay, generator=generator)
    rho = 2 * torch.rand(count, 1, generator=generator) - 1
    echo = rho * source[:, :length] + (1 - rho**2).sqrt() * torch.randn(count, length, generator=generator)
    features["text_features"][..., :width] = source[:, delay:, None]
    features["audio_features"][..., :width] = echo[..., None]
    return features, 3 * rho[:, 0]


def train_and_evaluate(coupling: str, test) -> dict:
    """Trains on a fresh generated batch per step (seeded: every coupling sees the same stream), then evaluates."""
    import torch

    from mamba_multimodal.training.metrics import sentiment_metrics

    torch.manual_seed(0)
    model = build_coupled(coupling=coupling, **TINY).train()  # L1 loss, as the paper
    optimizer = torch.optim.AdamW(model.parameters(), lr=TASK["lr"], weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=TASK["lr"], total_steps=TASK["steps"])
    generator = torch.Generator().manual_seed(1)
    losses, non_finite, start = [], 0, time.perf_counter()
    for _ in range(TASK["steps"]):
        features, labels = interaction_batch(TASK["batch"], generator)
        loss = model(**features, labels=labels).loss
        if not torch.isfinite(loss):
            non_finite += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        predictions = model(**test[0]).logits[:, 0]
    finite = bool(torch.isfinite(predictions).all())
    metrics = sentiment_metrics(predictions, test[1], dataset="mosei") if finite else {}
    last = losses[-50:] or [math.nan]
    return {"coupling": coupling, "train_seconds": seconds, "final_train_loss": sum(last) / len(last),
            "non_finite_steps": non_finite, "finite_predictions": finite, **metrics}  # fmt: skip


def bench_learning(couplings=("sum", "mean", "none")) -> list[dict]:
    import torch

    test = interaction_batch(TASK["test"], torch.Generator().manual_seed(2))
    constant = float(test[1].abs().mean())
    print(f"  (predicting 0 everywhere: MAE {constant:.3f}, Acc-2 ~0.5)")
    rows = []
    for coupling in couplings:
        row = train_and_evaluate(coupling, test)
        rows.append(row)
        print(
            f"  {coupling:5s} MAE {row.get('MAE', math.nan):.3f}  Acc-2 {row.get('Non0_acc_2', math.nan):.3f}  "
            f"Corr {row.get('Corr', math.nan):.3f}  ({row['train_seconds']:.0f} s, non-finite steps "
            f"{row['non_finite_steps']})",
            flush=True,
        )
    return rows


# ----------------------------------------------------------------------------------------------- report
def inference_table(rows) -> str:
    lines = [
        "| L | model | inference (s) | time / ours | inference memory (MB) | memory / ours | process peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours = next(r for r in rows if r["length"] == row["length"] and r["model"] == MODELS["coupled"])
        lines.append(
            f"| {row['length']} | {row['model']} | {row['seconds']:.3f} | {row['seconds'] / ours['seconds']:.1f}x "
            f"| {row['inference_mb']:.0f} | {row['inference_mb'] / ours['inference_mb']:.1f}x "
            f"| {row['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def stability_table(rows) -> str:
    lines = ["| coupling | L | max abs hidden state | finite logits |", "|---|---|---|---|"]
    lines += [f"| {r['coupling']} | {r['length']} | {r['max_abs_hidden']:.3e} | {r['finite_logits']} |" for r in rows]
    return "\n".join(lines)


def learning_table(rows) -> str:
    lines = [
        "| coupling | MAE | Corr | Acc-2 (Non0) | Acc-2 (Has0) | Acc-7 | train loss (last 50) | non-finite steps | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = {key: r.get(key, math.nan) for key in ("MAE", "Corr", "Non0_acc_2", "Has0_acc_2", "Mult_acc_7")}
        lines.append(
            f"| {r['coupling']} | {m['MAE']:.3f} | {m['Corr']:.3f} | {m['Non0_acc_2']:.3f} | {m['Has0_acc_2']:.3f} "
            f"| {m['Mult_acc_7']:.3f} | {r['final_train_loss']:.3f} | {r['non_finite_steps']} "
            f"| {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def targets(inference_rows, learning_rows) -> dict:
    def at(length, model, key):
        return next(r[key] for r in inference_rows if r["length"] == length and r["model"] == MODELS[model])

    result = {}
    lengths = sorted({r["length"] for r in inference_rows})
    for baseline, label in (("attention", "explicit attention"), ("attention_sdpa", "SDPA attention")):
        if 500 in lengths:
            speed = at(500, baseline, "seconds") / at(500, "coupled", "seconds")
            memory = at(500, baseline, "inference_mb") / at(500, "coupled", "inference_mb")
            result[f"L=500 inference >= 2x faster than {label}"] = {"ratio": speed, "met": speed >= 2}
            result[f"L=500 inference memory >= 6x less than {label}"] = {"ratio": memory, "met": memory >= 6}
        if len(lengths) > 1:  # first vs last length: neighbouring lengths are within timing noise
            for key, what in (("seconds", "speed"), ("inference_mb", "memory")):
                gaps = [at(n, baseline, key) / at(n, "coupled", key) for n in (lengths[0], lengths[-1])]
                name = f"{what} gap to {label} grows with L (gap at L={lengths[-1]} / gap at L={lengths[0]} > 1)"
                result[name] = {"ratio": gaps[1] / gaps[0], "met": gaps[1] > gaps[0]}
    metrics = {r["coupling"]: r for r in learning_rows}
    if "none" in metrics:
        for coupling in ("sum", "mean"):
            if coupling in metrics:
                gain = metrics[coupling].get("Non0_acc_2", 0.0) - metrics["none"].get("Non0_acc_2", 0.0)
                result[f"{coupling} beats none on Acc-2 by >= 0.1"] = {"ratio": gain, "met": gain >= 0.1}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="L=50 and 500 only, one repeat, a shorter learning check")
    parser.add_argument("--skip-learning", action="store_true", help="parts (a) and (b) only")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "bench_coupled.json"))
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "LENGTH", "REPEATS", "MEASURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, length, repeats, measure = args.worker
        print(json.dumps(inference_worker(kind, int(length), int(repeats), measure)))
        return

    import torch

    torch.set_num_threads(THREADS)
    if args.quick:
        TASK.update(steps=200)
    print(f"Coupled Mamba benchmark on {THREADS} threads")
    print("(a) inference, batch 32, MOSEI feature sizes")
    inference_rows = bench_inference((50, 500) if args.quick else LENGTHS, 1 if args.quick else 3)
    print("(b) stability at initialisation, MOSEI size")
    stability_rows = bench_stability()
    learning_rows = []
    if not args.skip_learning:
        print(f"(c) learning check: {TASK}, model {TINY}")
        learning_rows = bench_learning()
    report = {
        "machine": machine(),
        "inference": inference_rows,
        "stability": stability_rows,
        "learning": {"task": TASK, "model": TINY, "results": learning_rows},
        "targets": targets(inference_rows, learning_rows),
    }
    print(
        f"\n## (a) inference, batch {BATCH}, width {WIDTH}, {LAYERS} layers, MOSEI features\n"
        + inference_table(inference_rows)
    )
    print("\n## (b) untrained MOSEI-size model, batch 4\n" + stability_table(stability_rows))
    if learning_rows:
        print("\n## (c) cross-modal interaction task, held-out set\n" + learning_table(learning_rows))
    print("\n## targets")
    for name, verdict in report["targets"].items():
        print(f"- {name}: {verdict['ratio']:.2f} -> {'met' if verdict['met'] else 'NOT met'}")
    output = write_json(report, args.output)
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
