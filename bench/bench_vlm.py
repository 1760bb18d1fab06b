"""VLM-Mamba generation benchmark: per-token latency and memory against a LLaVA-style transformer, in one run.

(a) Both models see the same context (64 image features from the same VisionMamba tower + projector, then text) of
    512, 2048 or 8192 positions, prefilled once, then generate 32 tokens one step at a time with their cache (what
    `generate()` does per token): VLM-Mamba's LM carries a recurrent state of fixed size; the baseline, transformers'
    GPT2LMHeadModel of the same width and depth, a KV cache that grows with the context. Each (model, context) runs
    in a fresh subprocess: `step_ms` is the median decode step, `prefill_s` the one prefill, `decode_mb` what the
    32 decode steps added to the RSS at their peak (cache growth included), `peak_rss_mb` the process's peak.

Learning checks on easy-VQA (part (b) and (c) of the VLM issue) come with the processor and the data loaders.

Usage: python bench/bench_vlm.py [--quick] [--output bench/results/bench_vlm.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import MEMORY_WORKER_ENV, THREADS, current_rss_mb, machine, peak_rss_mb, reset_peak_rss, write_json

CONTEXTS = (512, 2048, 8192)
WIDTH, LAYERS, VOCAB, NEW_TOKENS, IMAGE_TOKENS = 512, 8, 4096, 32, 64


def build(model_name: str):
    """(model, context embedder) with random weights of the benchmark's width and depth, in eval mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, MambaConfig

    from mamba_multimodal import VLMambaConfig, VLMambaForConditionalGeneration

    torch.manual_seed(0)
    text = MambaConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, state_size=16, use_mambapy=False)
    vision = {
        "model_type": "vision_mamba",
        "image_size": 64,
        "patch_size": 8,
        "hidden_size": 256,
        "num_hidden_layers": 4,
    }
    vlm = VLMambaForConditionalGeneration(VLMambaConfig(vision_config=vision, text_config=text)).eval()
    if model_name == "vlm-mamba":
        return vlm, vlm.get_input_embeddings()
    config = GPT2Config(vocab_size=VOCAB, n_embd=WIDTH, n_layer=LAYERS, n_head=8, n_positions=max(CONTEXTS) + 64)
    return GPT2LMHeadModel(config).eval(), vlm.get_input_embeddings()


def context_embeddings(embed, length: int):
    """(1, length, WIDTH): 64 image features then text embeddings, as a VLM prompt."""
    import torch

    image = torch.randn(1, IMAGE_TOKENS, WIDTH)
    text = embed(torch.randint(0, VOCAB - 1, (1, length - IMAGE_TOKENS)))
    return torch.cat([image, text], dim=1)


def worker(model_name: str, context: int) -> dict:
    """Prefill, then NEW_TOKENS greedy decode steps with the model's cache; timings and memory of this process."""
    import torch

    torch.set_num_threads(THREADS)
    model, embed = build(model_name)
    with torch.no_grad():
        inputs = context_embeddings(embed, context)
        start = time.perf_counter()
        out = model(inputs_embeds=inputs, use_cache=True)
        prefill = time.perf_counter() - start
        cache = out.cache if hasattr(out, "cache") and out.cache is not None else out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        reset_peak_rss()
        before = current_rss_mb()
        steps = []
        for _ in range(NEW_TOKENS):
            start = time.perf_counter()
            name = "cache" if model_name == "vlm-mamba" else "past_key_values"
            out = model(input_ids=token, use_cache=True, **{name: cache})
            steps.append(time.perf_counter() - start)
            cache = out.cache if model_name == "vlm-mamba" else out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        decode_mb = peak_rss_mb() - before
    return {
        "model": model_name, "context": context, "prefill_s": prefill,
        "step_ms": 1000 * statistics.median(steps[2:]), "decode_mb": decode_mb, "peak_rss_mb": peak_rss_mb(),
    }  # fmt: skip


def run_worker(model_name: str, context: int) -> dict:
    env = {**os.environ, **MEMORY_WORKER_ENV, "OMP_NUM_THREADS": str(THREADS)}
    command = [sys.executable, __file__, "--worker", model_name, str(context)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"worker {model_name} at {context} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    by_key = {(row["model"], row["context"]): row for row in rows}
    print("\n(a) generation per token after a prefilled context, batch 1, width 512, 8 layers, 2 threads")
    print("| context | model | step (ms) | / VLM-Mamba's | / own at 512 | prefill (s) | decode +MB | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ours = by_key[("vlm-mamba", row["context"])]
        first = by_key[(row["model"], min(r["context"] for r in rows))]
        ratio = row["step_ms"] / ours["step_ms"]
        print(f"| {row['context']} | {row['model']} | {row['step_ms']:.2f} | {ratio:.2f}× | "
              f"{row['step_ms'] / first['step_ms']:.2f}× | {row['prefill_s']:.2f} | {row['decode_mb']:.1f} | "
              f"{row['peak_rss_mb']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="contexts 512 and 2048 only")
    parser.add_argument("--output", default="bench/results/bench_vlm.json")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    contexts = CONTEXTS[:2] if args.quick else CONTEXTS
    rows = [run_worker(model, context) for context in contexts for model in ("vlm-mamba", "gpt2-kv-cache")]
    print_table(rows)
    load = os.getloadavg()[0]
    print(f"\n1-minute load average at the end: {load:.2f}")
    report = {"machine": machine(), "load_average_1min": load, "generation": rows}
    print(f"wrote {write_json(report, Path(args.output))}")


if __name__ == "__main__":
    main()
