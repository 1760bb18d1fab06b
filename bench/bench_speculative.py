"""Prompt-lookup decoding against greedy decoding on the Mamba LM, in one run, 2 threads.

Prompt lookup (transformers' `prompt_lookup_num_tokens`) drafts the next tokens by finding the last generated n-gram
earlier in the sequence and copying what followed it; one forward verifies the drafts, and the cache is rolled back to
the last accepted token (transformers 5.25's per-token state rollback). It pays off where the output repeats the
input: editing, summarising, answering from a given text.

Prompt lookup finds the drafts by the last `max_matching_ngram_size` tokens (transformers' default 2); the model here
reads characters, so the rows also match on 8 characters, about the span of 2 subword tokens of English text.

The model: a character-level Mamba LM (width 128, 4 layers) trained until it recites a real text, the Zen of Python
(Python's `this` module, 856 characters), from any point. The task, proof-reading: the prompt holds the text with a
typo in three of its lines, then the opening of a line; the model writes the text on from there, typos corrected. Its
output repeats the prompt except at the typos, where the drafts copied from the prompt are rejected. The second
prompt holds only the opening: drafts then come from the phrases the text repeats ("is better than").

Rows: median wall time of the `generate()` calls over the prompts, the speed-up (greedy / prompt lookup, same
process, calls interleaved), tokens per forward pass (generated tokens / verification passes), and whether the
tokens are those of greedy decoding.

Usage: python bench/bench_speculative.py [--quick] [--output bench/results/bench_speculative.json]
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import os
import statistics
import time
from pathlib import Path

import torch
from transformers import DynamicCache, MambaConfig

from common import THREADS, machine, write_json
from mamba_multimodal import MambaForCausalLM

WIDTH, LAYERS, WINDOW, BATCH = 128, 4, 128, 16
NEW_TOKENS, OPENING, TYPO_LINES = 200, 24, (3, 9, 15)
DRAFT_TOKENS = (3, 10)
# transformers' default matches the last 2 tokens; on characters that is rarely unique, so 8 characters (about what 2
# subword tokens of English span) is measured too.
NGRAM_SIZES = (2, 8)


def zen_of_python() -> str:
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the text
        import this
    return codecs.decode(this.s, "rot13") + "\n\n"


class Characters:
    """Character-level vocabulary of the text; ids 0-3 are left to pad, BOS, EOS and unknown."""

    def __init__(self, text: str):
        self.ids = {char: index + 4 for index, char in enumerate(sorted(set(text)))}

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.ids.get(char, 3) for char in text])


def build_model(vocab_size: int) -> MambaForCausalLM:
    config = MambaConfig(
        vocab_size=vocab_size, hidden_size=WIDTH, num_hidden_layers=LAYERS, state_size=16, expand=2, conv_kernel=4,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, use_mambapy=False,
    )  # fmt: skip
    torch.manual_seed(0)
    return MambaForCausalLM(config)


def train_to_recite(model: MambaForCausalLM, text: torch.Tensor, steps: int) -> float:
    """AdamW on windows of the text read in a loop (so that it goes on after its end). Returns the last loss."""
    generator = torch.Generator().manual_seed(0)
    looped = text.repeat(3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(text), (BATCH,), generator=generator).tolist()
        batch = torch.stack([looped[start : start + WINDOW + 1] for start in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return loss.item()


def with_typos(text: str) -> str:
    """The text with the first two letters of a word swapped in each of the lines TYPO_LINES."""
    lines = text.split("\n")
    for index in TYPO_LINES:
        words = lines[index].split(" ")
        words[1] = words[1][1] + words[1][0] + words[1][2:]
        lines[index] = " ".join(words)
    return "\n".join(lines)


def prompts(text: str, characters: Characters) -> dict[str, list[torch.Tensor]]:
    """Per task, (1, l) prompts that open at four different lines of the text."""
    line_starts = [
        index + 1 for index, char in enumerate(text) if char == "\n" and text[index + 1 : index + 2].isalpha()
    ]
    openings = [text[start : start + OPENING] for start in line_starts[2:18:4]]
    return {
        "proof-read the given text": [characters.encode(with_typos(text) + opening)[None] for opening in openings],
        "recite, no text given": [characters.encode(opening)[None] for opening in openings],
    }


def generate_counting_passes(model, prompt, **kwargs) -> tuple[torch.Tensor, int]:
    """generate()'s output and its number of verification passes (one cache crop each)."""
    crop, passes = DynamicCache.crop, []
    DynamicCache.crop = lambda cache, n: (passes.append(n), crop(cache, n))[1]
    try:
        return model.generate(prompt, **kwargs), len(passes)
    finally:
        DynamicCache.crop = crop


def compare(model, task_prompts: list[torch.Tensor], repeats: int) -> list[dict]:
    """Greedy against prompt lookup with each draft length, on the same prompts, calls interleaved."""
    settings = {"greedy": {}} | {
        f"prompt lookup, {k} drafts, {n}-gram match": {"prompt_lookup_num_tokens": k, "max_matching_ngram_size": n}
        for n in NGRAM_SIZES
        for k in DRAFT_TOKENS
    }
    shared = {"max_new_tokens": NEW_TOKENS, "do_sample": False}
    outputs, passes, times = {}, {}, {name: [] for name in settings}
    with torch.no_grad():
        for name, extra in settings.items():  # also the warm-up
            results = [generate_counting_passes(model, prompt, **shared, **extra) for prompt in task_prompts]
            outputs[name] = [output for output, _ in results]
            passes[name] = sum(count for _, count in results)
        for _ in range(repeats):
            for name, extra in settings.items():
                start = time.perf_counter()
                for prompt in task_prompts:
                    model.generate(prompt, **shared, **extra)
                times[name].append(time.perf_counter() - start)
    greedy = outputs["greedy"]
    new_tokens = sum(output.shape[1] - prompt.shape[1] for output, prompt in zip(greedy, task_prompts, strict=True))
    rows = []
    for name in settings:
        rows.append({
            "decoding": name, "seconds": statistics.median(times[name]),
            "speedup_over_greedy": statistics.median(times["greedy"]) / statistics.median(times[name]),
            "tokens_per_pass": new_tokens / passes[name] if passes[name] else 1.0,
            "same_tokens_as_greedy": all(map(torch.equal, outputs[name], greedy)),
        })  # fmt: skip
    return rows


def recited_correctly(model, text: torch.Tensor, task_prompts: list[torch.Tensor]) -> float:
    """Fraction of generated characters that continue the text correctly (greedy)."""
    looped, right = text.repeat(2).tolist(), 0
    with torch.no_grad():
        for prompt in task_prompts:
            opening = prompt[0, -OPENING:].tolist()
            start = next(i for i in range(len(text)) if looped[i : i + OPENING] == opening) + OPENING
            generated = model.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False)[0, prompt.shape[1] :]
            right += sum(
                int(a == b) for a, b in zip(generated.tolist(), looped[start : start + NEW_TOKENS], strict=True)
            )
    return right / (NEW_TOKENS * len(task_prompts))


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print("| decoding | time (s) | speed-up over greedy | tokens per forward | same tokens as greedy |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['decoding']} | {row['seconds']:.2f} | {row['speedup_over_greedy']:.2f}× | "
              f"{row['tokens_per_pass']:.2f} | {'yes' if row['same_tokens_as_greedy'] else 'NO'} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer training steps, one timed repeat")
    parser.add_argument("--output", default="bench/results/bench_speculative.json")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    steps, repeats = (40, 1) if args.quick else (160, 3)
    text = zen_of_python()
    characters = Characters(text)
    model = build_model(vocab_size=len(characters.ids) + 4)
    start = time.perf_counter()
    loss = train_to_recite(model, characters.encode(text), steps)
    model.eval()
    model.generation_config.eos_token_id = None  # always NEW_TOKENS new tokens
    report = {
        "machine": machine(),
        "model": {"width": WIDTH, "layers": LAYERS, "parameters": sum(p.numel() for p in model.parameters())},
        "training": {"steps": steps, "seconds": time.perf_counter() - start, "last_loss": loss},
        "tasks": {},
    }
    for task, task_prompts in prompts(text, characters).items():
        report["tasks"][task] = {
            "prompt_lengths": [prompt.shape[1] for prompt in task_prompts],
            "recited_correctly": recited_correctly(model, characters.encode(text), task_prompts),
            "rows": compare(model, task_prompts, repeats),
        }
    report["load_average_1min"] = os.getloadavg()[0]

    info = report["machine"]
    print(f"character-level Mamba LM, width {WIDTH}, {LAYERS} layers ({report['model']['parameters']:,} parameters), "
          f"trained {steps} steps ({report['training']['seconds']:.0f} s, last loss {loss:.4f}) to recite the Zen of "
          f"Python; batch 1, {THREADS} threads, {NEW_TOKENS} new tokens per prompt, 4 prompts")  # fmt: skip
    print(f"machine: {info['cpu']} ({' '.join(info['cpu_flags'])}), torch {info['torch']}, "
          f"transformers {info['transformers']}")  # fmt: skip
    for task, result in report["tasks"].items():
        lengths = sorted(set(result["prompt_lengths"]))
        print_table(f"{task} (prompts of {'-'.join(map(str, lengths[:: max(1, len(lengths) - 1)]))} tokens; "
                    f"{result['recited_correctly']:.1%} of the characters right)", result["rows"])  # fmt: skip
    print(f"\n1-minute load average at the end: {report['load_average_1min']:.2f}")
    print(f"wrote {write_json(report, Path(args.output))}")


if __name__ == "__main__":
    main()
