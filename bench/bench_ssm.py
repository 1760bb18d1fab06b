"""SSM core benchmark: our scan paths and Mamba LM against their peers, in one run, on 2 CPU threads.

(a) selective scan forward+backward, b=2, d=512, n=16: our fused CPU kernel, our plain-PyTorch chunked path, our
    sequential reference, and mambapy's parallel scan (pscan) used as transformers uses it.
(b) one training step (forward + backward + AdamW) of a width-256, 2-layer LM, b=2, vocabulary 1024 for all:
    ours, transformers' MambaForCausalLM with use_mambapy=True, and transformers' GPT2LMHeadModel (4 heads).
    Each (model, L) runs in a fresh subprocess so its peak RSS is its own: `peak_rss_mb` is the process's high-water
    mark, `step_peak_mb` what the training steps added on top of the process with model and data already built.

Usage: python bench/bench_ssm.py [--quick] [--output bench/results/bench_ssm.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import THREADS, current_rss_mb, machine, peak_rss_mb, time_calls, write_json

SCAN_LENGTHS = (512, 2048, 8192)
LM_LENGTHS = (1024, 4096, 8192)
VOCAB, WIDTH, LAYERS, BATCH = 1024, 256, 2, 2


def time_call(function, repeats: int, warmup: int = 1) -> float:
    """Median wall time of `function()` over `repeats` runs after `warmup` runs."""
    return statistics.median(time_calls(function, repeats, warmup))


# ------------------------------------------------------------------------------------------ (a) the scan
def mambapy_selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """The selective scan as transformers computes it with use_mambapy=True: discretise, pscan, contract with C."""
    import torch.nn.functional as F
    from mambapy.pscan import pscan

    delta = F.softplus(delta + delta_bias[:, None])
    decay = (delta.transpose(1, 2)[..., None] * A).exp()  #                                       (b, l, d, n)
    drive = (delta * u).transpose(1, 2)[..., None] * B.transpose(1, 2)[:, :, None, :]  #       (b, l, d, n)
    states = pscan(decay, drive)
    y = (states @ C.transpose(1, 2)[..., None]).squeeze(-1).transpose(1, 2)  #                    (b, d, l)
    return (y + D[:, None] * u) * F.silu(z)


def bench_scan(lengths, repeats) -> list[dict]:
    import torch

    from mamba_multimodal.modeling import ssm

    rows = []
    batch, dim, nstate = 2, 512, 16
    for length in lengths:
        inputs = {
            "u": torch.randn(batch, dim, length), "delta": torch.randn(batch, dim, length) * 0.5,
            "A": -torch.rand(dim, nstate) - 0.5, "B": torch.randn(batch, nstate, length),
            "C": torch.randn(batch, nstate, length), "D": torch.randn(dim), "z": torch.randn(batch, dim, length),
            "delta_bias": torch.randn(dim) * 0.5,
        }  # fmt: skip
        leaves = {k: v.requires_grad_() for k, v in inputs.items()}
        scan = functools.partial(ssm.selective_scan, **leaves, delta_softplus=True)
        paths = {
            "ours (fused CPU kernel)": functools.partial(scan, backend="cpu"),
            "ours (plain PyTorch, chunked)": functools.partial(scan, backend="pytorch"),
            "mambapy pscan": functools.partial(mambapy_selective_scan, **leaves),
            "ours (sequential reference)": functools.partial(scan, backend="reference"),
        }
        for name, forward in paths.items():
            slow = "reference" in name or ("PyTorch" in name and length > 2048)
            seconds = time_call(lambda f=forward: f().sum().backward(), repeats=1 if slow else repeats)
            rows.append({"length": length, "path": name, "seconds": seconds})
            print(f"  scan L={length:5d} {name:32s} {seconds:8.3f} s", flush=True)
    return rows


# --------------------------------------------------------------------------------------- (b) LM training
def build_lm(kind: str, length: int):
    import torch
    import transformers

    from mamba_multimodal import MambaForCausalLM

    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=WIDTH, n_layer=LAYERS, n_head=4, n_positions=length)
        return transformers.GPT2LMHeadModel(config)
    config = transformers.MambaConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, state_size=16, expand=2,
        use_mambapy=kind == "transformers-mamba",
    )  # fmt: skip
    model_class = MambaForCausalLM if kind == "ours" else transformers.MambaForCausalLM
    return model_class(config).to(torch.float32)


def lm_step_worker(kind: str, length: int, repeats: int) -> dict:
    """Runs in a fresh process: times training steps and reads the process's peak RSS."""
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build_lm(kind, length).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    input_ids = torch.randint(0, VOCAB, (BATCH, length))
    baseline = current_rss_mb()

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=input_ids, labels=input_ids).loss.backward()
        optimizer.step()

    seconds = time_call(step, repeats=repeats)
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "step_peak_mb": peak_rss_mb() - baseline}


LM_NAMES = {"ours": "ours", "transformers-mamba": "transformers Mamba (mambapy)", "gpt2": "transformers GPT-2 (sdpa)"}


def bench_lm(lengths, repeats) -> list[dict]:
    rows = []
    for length in lengths:
        for kind, name in LM_NAMES.items():
            command = [sys.executable, __file__, "--lm-worker", kind, str(length), str(repeats)]
            env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"{name} at L={length} failed:\n{result.stderr[-3000:]}")
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append({"length": length, "model": name, **measured})
            seconds, peak, step_peak = measured["seconds"], measured["peak_rss_mb"], measured["step_peak_mb"]
            print(
                f"  LM   L={length:5d} {name:32s} {seconds:8.3f} s  peak RSS {peak:7.0f} MB (step +{step_peak:.0f} MB)"
            )
    return rows


# ----------------------------------------------------------------------------------------------- report
def scan_table(rows) -> str:
    lines = ["| L | path | fwd+bwd (s) | mambapy / this |", "|---|---|---|---|"]
    for row in rows:
        peer = next(r["seconds"] for r in rows if r["length"] == row["length"] and r["path"] == "mambapy pscan")
        lines.append(f"| {row['length']} | {row['path']} | {row['seconds']:.3f} | {peer / row['seconds']:.1f}x |")
    return "\n".join(lines)


def lm_table(rows) -> str:
    lines = [
        "| L | model | step (s) | speed-up of ours | peak RSS (MB) | step peak (MB) | ours / this step peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours = next(r for r in rows if r["length"] == row["length"] and r["model"] == "ours")
        speedup, memory_share = row["seconds"] / ours["seconds"], ours["step_peak_mb"] / row["step_peak_mb"]
        lines.append(
            f"| {row['length']} | {row['model']} | {row['seconds']:.3f} | {speedup:.1f}x "
            f"| {row['peak_rss_mb']:.0f} | {row['step_peak_mb']:.0f} | {memory_share:.2f} |"
        )
    return "\n".join(lines)


def targets(scan_rows, lm_rows) -> dict:
    """The issue's targets, evaluated on this run."""

    def scan(length, path):
        return next(r["seconds"] for r in scan_rows if r["length"] == length and r["path"] == path)

    def lm(length, model, key="seconds"):
        return next(r[key] for r in lm_rows if r["length"] == length and r["model"] == model)

    result = {}
    if any(r["length"] == 2048 for r in scan_rows):
        ratio = scan(2048, "mambapy pscan") / scan(2048, "ours (fused CPU kernel)")
        result["scan L=2048 >= 5x faster than mambapy"] = {"ratio": ratio, "met": ratio >= 5}
    if any(r["length"] == 4096 for r in lm_rows):
        vs_mamba = lm(4096, LM_NAMES["transformers-mamba"]) / lm(4096, "ours")
        vs_gpt2 = lm(4096, LM_NAMES["gpt2"]) / lm(4096, "ours")
        result["LM step L=4096 >= 5x faster than transformers Mamba (mambapy)"] = {
            "ratio": vs_mamba,
            "met": vs_mamba >= 5,
        }
        result["LM step L=4096 >= 3x faster than GPT-2"] = {"ratio": vs_gpt2, "met": vs_gpt2 >= 3}
    if any(r["length"] == 8192 for r in lm_rows):
        for key in ("step_peak_mb", "peak_rss_mb"):
            share = lm(8192, "ours", key) / lm(8192, LM_NAMES["gpt2"], key)
            result[f"LM L=8192 {key} <= 1/3 of GPT-2's"] = {"ratio": share, "met": share <= 1 / 3}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="L=2048 scan and L=1024 LM only, one repeat")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "bench_ssm.json"))
    parser.add_argument("--lm-worker", nargs=3, metavar=("KIND", "LENGTH", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lm_worker:
        kind, length, repeats = args.lm_worker
        print(json.dumps(lm_step_worker(kind, int(length), int(repeats))))
        return

    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    repeats = 1 if args.quick else 3
    print(f"SSM benchmark on {THREADS} threads")
    scan_rows = bench_scan((2048,) if args.quick else SCAN_LENGTHS, repeats)
    lm_rows = bench_lm((1024,) if args.quick else LM_LENGTHS, repeats)
    report = {"machine": machine(), "scan": scan_rows, "lm_step": lm_rows, "targets": targets(scan_rows, lm_rows)}
    print("\n## (a) selective scan, forward+backward, b=2 d=512 n=16\n" + scan_table(scan_rows))
    print("\n## (b) LM training step, width 256, 2 layers, b=2, vocab 1024\n" + lm_table(lm_rows))
    print("\n## targets")
    for name, verdict in report["targets"].items():
        print(f"- {name}: {verdict['ratio']:.2f} -> {'met' if verdict['met'] else 'NOT met'}")
    print(f"\nwrote {write_json(report, args.output)}")


if __name__ == "__main__":
    main()
