"""Mamba LM decoding against its peers, same weights, same script: llama.cpp, transformers' Mamba, ours in fp32 / bf16.

One set of random weights per shape (seeded), saved once as a Hugging Face folder with transformers' Mamba keys: ours
and transformers' `MambaForCausalLM` load it, llama.cpp's own converter (`convert_hf_to_gguf.py`, from the source in
the `llama-cpp-python` sdist) turns it into f32, f16 and q8_0 GGUF files, and `llama-bench` built from that source
measures them (`-p 512 -n 128 -t 2 -r 3`). Per runtime, batch 1, 2 threads, medians of 3 repeats:
- prefill: one forward of 512 tokens (llama.cpp: pp512);
- decode: 128 new tokens after a one-token prompt, through `generate()` (max_new_tokens = 128, no end-of-sequence
  token, as llama-bench's tg128 ignores it: a `min_new_tokens` would add two logits processors that scan the whole
  vocabulary at every step, ~1 ms a token at 130m, a cost of the benchmark's setup rather than of decoding) and
  through a loop of cached forwards (llama.cpp: tg128);
- the bound: a decode step reads every weight once, so the memory bandwidth measured here (a 2-thread sum over a
  large tensor) over the bytes of the weights caps tokens/s; each decode is given as a percentage of its bound;
- same tokens: transformers' and the loop's greedy tokens against ours in fp32 (`generate()`); llama.cpp's against
  ours through `llama-simple` (its 32-token greedy continuation of a text prompt, byte for byte).

Shapes: "130m" is Mamba-130m (width 768, 24 layers, vocab 50,280, 129 M parameters); "demo" the VLM LM of
bench_vlm.py (width 512, 8 layers, vocab 4,096). Both: state 16, conv 4, expand 2, tied embeddings.

llama.cpp is built once into ~/.cache/mamba_multimodal/llama.cpp-<version>/ (`--build-llama-cpp`: `pip download`
of the sdist, cmake Release with GGML_NATIVE, CPU only, targets llama-bench, llama-simple and llama-tokenize; a few
minutes on 2 cores), with a venv for its converter (torch, transformers, numpy, sentencepiece, its own gguf-py).
Without the build the llama.cpp rows are skipped and the script says how to build.

Rounds: the speed of a shared machine drifts over minutes, and the runtimes are measured one after another, so
`--rounds N` measures all of them N times over (each round: the torch runtimes, then llama-bench) and reports each
rate as the median of its rounds (every round's value kept in the JSON).

Usage: python bench/bench_decode.py [--shape 130m|demo|all] [--quick] [--skip-llama-cpp] [--build-llama-cpp]
                                    [--rounds N] [--output PATH]
Full runs write bench/results/bench_decode.json; --quick writes to the system temp folder unless --output is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import THREADS, machine, time_calls, write_json

RESULTS = Path(__file__).parent / "results" / "bench_decode.json"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CACHE = Path(os.environ.get("MAMBA_MULTIMODAL_CACHE", Path.home() / ".cache" / "mamba_multimodal"))
LLAMA_CPP_DIR = CACHE / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"
LLAMA_CPP_TARGETS = ("llama-bench", "llama-simple", "llama-tokenize")
GGUF_TYPES = ("f32", "f16", "q8_0")
# What the converter imports (its gguf-py comes from the source tree, on sys.path through the script itself).
CONVERTER_PACKAGES = ("torch", "transformers", "numpy", "sentencepiece", "safetensors", "pyyaml", "tqdm", "requests")

COMMON_SHAPE = {"state_size": 16, "conv_kernel": 4, "expand": 2, "tie_word_embeddings": True}
SHAPES = {
    "130m": {"vocab_size": 50280, "hidden_size": 768, "num_hidden_layers": 24},
    "demo": {"vocab_size": 4096, "hidden_size": 512, "num_hidden_layers": 8},  # bench_vlm.py's VOCAB, WIDTH, LAYERS
}
QUICK_SHAPE = {"vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2}
PREFILL, DECODE, REPEATS = 512, 128, 3
QUICK_PREFILL, QUICK_DECODE = 32, 8
GPT_NEOX_VOCABULARY = 50277  # the converter's built-in tokenizer for a folder without one
CHECK_PROMPT, CHECK_TOKENS = "The quick brown fox jumps over the lazy dog. Once upon a time", 32
# Ours and transformers' classes, with the weight dtype each runs in; the first is the tokens' reference.
TORCH_RUNTIMES = (("ours", "fp32"), ("transformers", "fp32"), ("ours", "bf16"))


# ---------------------------------------------------------------------------------------------------- torch runtimes


def make_weights(shape: dict, folder: Path) -> Path:
    """Random weights (seed 0) of `shape` saved as a Hugging Face folder with transformers' Mamba keys; a folder made
    before for the same shape is kept (its GGUF files with it)."""
    import torch

    from mamba_multimodal import MambaForCausalLM
    from mamba_multimodal.configuration.configuration_mamba import MambaConfig

    settings = {**COMMON_SHAPE, **shape}
    if (folder / "model.safetensors").exists():
        saved = json.loads((folder / "config.json").read_text())
        if all(saved.get(key) == value for key, value in settings.items()):
            return folder
    torch.manual_seed(0)
    MambaForCausalLM(MambaConfig(**settings, use_mambapy=False)).save_pretrained(folder)
    return folder


def load_model(runtime: str, dtype: str, folder: Path):
    """The runtime's `MambaForCausalLM` from `folder`, in eval mode and `dtype`; fails on any key it does not share."""
    import torch

    if runtime == "ours":
        from mamba_multimodal import MambaForCausalLM
    else:
        from transformers import MambaForCausalLM
    model, info = MambaForCausalLM.from_pretrained(folder, output_loading_info=True)
    unmatched = {key: value for key, value in info.items() if value and key in ("missing_keys", "unexpected_keys")}
    if unmatched:
        raise RuntimeError(f"{runtime} does not load the shared weights as they are: {unmatched}")
    return model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]).eval()


def weight_bytes(model) -> int:
    """Bytes of the distinct parameters (the tied head counted once): what one decode step reads."""
    return sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())


def cache_keyword(model) -> str:
    """The forward's cache argument: `cache` (ours; transformers >= 5.24) or `cache_params` (older transformers)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "cache_params"


def greedy_loop(model, start, new_tokens: int) -> list[int]:
    """`new_tokens` greedy tokens after the prompt `start` (1, l), one cached forward per token."""
    import torch

    keyword = cache_keyword(model)
    output = model(input_ids=start, use_cache=True, logits_to_keep=1)
    tokens = []
    for step in range(new_tokens):
        token = output.logits[:, -1:].argmax(-1)
        tokens.append(int(token))
        if step + 1 < new_tokens:
            cache = getattr(output, "cache", None) or getattr(output, "cache_params", None)
            output = model(input_ids=token, use_cache=True, **{keyword: cache})
    return torch.tensor(tokens).tolist()


def greedy_generate(model, start, new_tokens: int) -> list[int]:
    """`new_tokens` greedy tokens after `start` (1, l) through `generate()`, with no end-of-sequence token."""
    import torch
    from transformers import GenerationConfig

    model.generation_config.eos_token_id = None  # else generate() keeps the model's own (a merge of the two configs)
    settings = GenerationConfig(
        max_new_tokens=new_tokens, do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None
    )
    output = model.generate(start, attention_mask=torch.ones_like(start), generation_config=settings)
    tokens = output[0, start.shape[1] :].tolist()
    if len(tokens) != new_tokens:
        raise RuntimeError(f"generate() stopped after {len(tokens)} of {new_tokens} new tokens")
    return tokens


def measure_torch(runtime: str, dtype: str, folder: Path, prompt, new_tokens: int, repeats: int) -> dict:
    """Prefill and decode tokens/s of one runtime (medians of `repeats`), its generated tokens and its weight bytes."""
    import torch

    model = load_model(runtime, dtype, folder)
    start = prompt[:, :1]
    with torch.inference_mode():
        prefill = time_calls(lambda: model(input_ids=prompt, use_cache=True, logits_to_keep=1), repeats)
        greedy_generate(model, start, 2)  # warm-up; a full one would double the bf16 rows' minutes
        generate_times, loop_times = [], []
        for _ in range(repeats):  # interleaved, so that a change in the machine's load hits both alike
            began = time.perf_counter()
            tokens = greedy_generate(model, start, new_tokens)
            generate_times.append(time.perf_counter() - began)
            began = time.perf_counter()
            loop_tokens = greedy_loop(model, start, new_tokens)
            loop_times.append(time.perf_counter() - began)
    return {
        "runtime": runtime, "dtype": dtype, "weight_bytes": weight_bytes(model),
        "prefill_tokens_per_s": prompt.shape[1] / statistics.median(prefill),
        "decode_tokens_per_s": new_tokens / statistics.median(generate_times),
        "decode_loop_tokens_per_s": new_tokens / statistics.median(loop_times),
        "tokens": tokens, "loop_tokens_equal_generate": loop_tokens == tokens,
    }  # fmt: skip


def memory_bandwidth_gbs(elements: int, repeats: int) -> float:
    """GB/s of a 2-thread sum over a float32 tensor of `elements` (far larger than the caches): a read-only stream,
    as a decode step's pass over the weights."""
    import torch

    data = torch.ones(elements)
    times = time_calls(lambda: data.sum(), repeats=max(repeats, 3))
    return elements * 4 / statistics.median(times) / 1e9


# ----------------------------------------------------------------------------------------------------------- llama.cpp


def llama_cpp_binary(name: str, directory: Path = LLAMA_CPP_DIR) -> Path:
    return directory / "build" / "bin" / name


def converter_python(directory: Path = LLAMA_CPP_DIR) -> Path:
    return directory / "convert-venv" / "bin" / "python"


def build_llama_cpp(directory: Path = LLAMA_CPP_DIR) -> None:
    """Fetches the llama-cpp-python sdist with pip, builds its vendored llama.cpp (CPU, Release, native) and makes the
    converter's venv with the versions of torch and transformers this process runs; every step skipped when done."""
    import torch
    import transformers

    source = directory / "source"
    if not (source / "convert_hf_to_gguf.py").exists():
        with tempfile.TemporaryDirectory() as download:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
                            download, f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"], check=True)  # fmt: skip
            (sdist,) = Path(download).glob("*.tar.gz")
            with tarfile.open(sdist) as archive:
                archive.extractall(download, filter="data")
            shutil.copytree(next(Path(download).glob("*/vendor/llama.cpp")), source)
    build = directory / "build"
    if not all(llama_cpp_binary(name, directory).exists() for name in LLAMA_CPP_TARGETS):
        flags = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF"]  # fmt: skip
        subprocess.run(["cmake", "-S", source, "-B", build, *flags], check=True)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2), "--target", *LLAMA_CPP_TARGETS],
                       check=True)  # fmt: skip
    if not converter_python(directory).exists():
        subprocess.run([sys.executable, "-m", "venv", directory / "convert-venv"], check=True)
        pins = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}
        packages = [f"{name}=={pins[name]}" if name in pins else name for name in CONVERTER_PACKAGES]
        subprocess.run([converter_python(directory), "-m", "pip", "install", *packages], check=True)


def captured(command: list, **options) -> bytes:
    """The command's stdout; its stderr's end in the error when it fails."""
    result = subprocess.run(command, capture_output=True, check=False, **options)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, command))} failed (exit status {result.returncode}):\n{stderr}")
    return result.stdout


# The GGUF's facts the benchmark needs, read with the converter's own gguf-py: its tensors' bytes (a decode step reads
# them all) and its token strings (to print our tokens as llama.cpp prints its own).
GGUF_FACTS = """
import json, sys
from gguf import GGUFReader
reader = GGUFReader(sys.argv[1])
field = reader.get_field("tokenizer.ggml.tokens")
tokens = [bytes(field.parts[index]).decode("utf-8") for index in field.data]
print(json.dumps({"tensor_bytes": sum(int(tensor.n_bytes) for tensor in reader.tensors), "tokens": tokens}))
"""


def convert_to_gguf(folder: Path, output: Path, python: Path, directory: Path = LLAMA_CPP_DIR) -> dict[str, dict]:
    """{gguf type: {"path", "tensor_bytes", "tokens"}} of `folder` converted by llama.cpp's converter."""
    source = directory / "source"
    converted = {}
    for gguf_type in GGUF_TYPES:
        path = output / f"model-{gguf_type}.gguf"
        if not path.exists() or path.stat().st_mtime < (folder / "model.safetensors").stat().st_mtime:
            command = [python, source / "convert_hf_to_gguf.py", folder, "--outtype", gguf_type, "--outfile", path]
            captured(command)
        environment = {**os.environ, "PYTHONPATH": str(source / "gguf-py")}
        facts = captured([python, "-c", GGUF_FACTS, path], env=environment)
        converted[gguf_type] = {"path": path, **json.loads(facts)}
    return converted


def parse_llama_bench(report: str) -> dict[str, dict[str, float]]:
    """{model file name: {"prefill_tokens_per_s", "decode_tokens_per_s"}} from `llama-bench -o json`: the median
    of each test's per-repeat rates (`samples_ts`); a pp test has n_gen 0, a tg test n_prompt 0."""
    results = {}
    for test in json.loads(report):
        kind = "prefill_tokens_per_s" if test["n_gen"] == 0 else "decode_tokens_per_s"
        name = Path(test["model_filename"]).name
        results.setdefault(name, {})[kind] = statistics.median(test["samples_ts"])
    return results


def run_llama_bench(paths: list[Path], prefill: int, decode: int, repeats: int) -> tuple[dict, dict[str, str]]:
    """llama-bench's rates for each GGUF file ({file name: rates}), one run per file (its JSON kept beside it), and
    {file name: the end of its error} for each run that failed: one GGUF type crashing (llama.cpp 0.3.36's q8_0
    segfaults on an AMX Xeon at the quick shape) leaves the others' rows."""
    rates, failures = {}, {}
    for path in paths:
        command = [llama_cpp_binary("llama-bench"), "-m", str(path), "-p", str(prefill), "-n", str(decode),
                   "-t", str(THREADS), "-r", str(repeats), "-o", "json"]  # fmt: skip
        try:
            report = captured(command).decode()
        except RuntimeError as error:
            failures[path.name] = str(error)[-500:]
            print(f"llama-bench failed on {path.name}; its row is left out:\n{failures[path.name]}")
            continue
        path.with_suffix(".llama-bench.json").write_text(report)
        rates.update(parse_llama_bench(report))
    return rates, failures


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet read backwards: the character a token string uses for each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            characters[chr(byte)] = byte
        else:
            characters[chr(256 + extra)] = byte
            extra += 1
    return characters


def token_bytes(token_ids: list[int], tokens: list[str]) -> bytes:
    """The bytes llama.cpp prints for `token_ids`, given the GGUF's byte-level token strings."""
    decoder = byte_decoder()
    return b"".join(bytes(decoder[character] for character in tokens[token]) for token in token_ids)


def parse_token_ids(printed: str) -> list[int]:
    """`llama-tokenize --ids` prints `[1, 2, 3]` as its last line."""
    return json.loads(printed.strip().splitlines()[-1])


def check_llama_cpp_tokens(gguf_path: Path, tokens: list[str], folder: Path) -> dict:
    """llama-simple's greedy continuation of CHECK_PROMPT (CHECK_TOKENS tokens) against ours in fp32, byte for byte."""
    import torch

    tokenize = [llama_cpp_binary("llama-tokenize"), "-m", gguf_path, "-p", CHECK_PROMPT, "--ids", "--log-disable"]
    prompt_ids = parse_token_ids(captured(tokenize).decode())
    model = load_model("ours", "fp32", folder)
    with torch.inference_mode():
        ours = greedy_generate(model, torch.tensor([prompt_ids]), CHECK_TOKENS)
    if model.config.eos_token_id in ours:  # llama-simple stops before printing an end-of-generation token
        ours = ours[: ours.index(model.config.eos_token_id)]
    theirs = captured([llama_cpp_binary("llama-simple"), "-m", gguf_path, "-n", str(CHECK_TOKENS), CHECK_PROMPT])
    expected = token_bytes(prompt_ids + ours, tokens)
    return {
        "same_tokens": theirs.rstrip(b"\n") == expected,
        "compared_tokens": CHECK_TOKENS,
        "llama_simple_text": theirs.decode("utf-8", "replace"),
        "ours_text": expected.decode("utf-8", "replace"),
    }


def measure_llama_cpp(
    folder: Path, work: Path, prefill: int, decode: int, repeats: int, python: Path
) -> tuple[list[dict], dict[str, str]]:
    """llama-bench's rows for the f32, f16 and q8_0 conversions of `folder`, their tokens checked where the GGUF holds
    GPT-NeoX's whole vocabulary (the converter gives a smaller model the first tokens of it, which cannot spell the
    prompt), and the failed runs (`run_llama_bench`)."""
    converted = convert_to_gguf(folder, work, python)
    rates, failures = run_llama_bench([entry["path"] for entry in converted.values()], prefill, decode, repeats)
    rows = []
    for gguf_type, entry in converted.items():
        if entry["path"].name not in rates:
            continue
        check = {"same_tokens": None}
        if len(entry["tokens"]) >= GPT_NEOX_VOCABULARY:
            check = check_llama_cpp_tokens(entry["path"], entry["tokens"], folder)
        rows.append({"runtime": "llama.cpp", "dtype": gguf_type, "weight_bytes": entry["tensor_bytes"],
                     **rates[entry["path"].name], **check})  # fmt: skip
    return rows, failures


# ------------------------------------------------------------------------------------------------------- the report


def finish_rows(rows: list[dict], bandwidth_gbs: float) -> list[dict]:
    """Adds each row's bound (bandwidth over its weight bytes), its decode as % of it, its ratios to transformers'
    fp32 row, and for the torch rows `same_tokens` (their tokens against ours in fp32) and how many agree first."""
    reference = next(row for row in rows if (row["runtime"], row["dtype"]) == ("ours", "fp32"))
    peer = next(row for row in rows if (row["runtime"], row["dtype"]) == ("transformers", "fp32"))
    for row in rows:
        row["bound_tokens_per_s"] = bandwidth_gbs * 1e9 / row["weight_bytes"]
        row["decode_percent_of_bound"] = 100 * row["decode_tokens_per_s"] / row["bound_tokens_per_s"]
        row["prefill_vs_transformers"] = row["prefill_tokens_per_s"] / peer["prefill_tokens_per_s"]
        row["decode_vs_transformers"] = row["decode_tokens_per_s"] / peer["decode_tokens_per_s"]
        if "tokens" in row:
            row["same_tokens"] = row["tokens"] == reference["tokens"]
            row["compared_tokens"] = len(reference["tokens"])
            pairs = zip(row["tokens"], reference["tokens"], strict=True)
            row["tokens_agreeing"] = next((i for i, (a, b) in enumerate(pairs) if a != b), len(reference["tokens"]))
    return rows


def same_tokens_cell(row: dict) -> str:
    if row["runtime"] == "ours" and row["dtype"] == "fp32":
        return "reference"
    if row["same_tokens"] is None:
        return "not checked"
    if row["same_tokens"]:
        return f"yes ({row['compared_tokens']})"
    agreeing = f"first {row['tokens_agreeing']} of " if "tokens_agreeing" in row else ""
    return f"no ({agreeing}{row['compared_tokens']})"


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print("| runtime | weights | prefill tok/s | decode tok/s | decode % of bound | vs transformers (prefill / decode) "
          "| same tokens |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        loop = f" (loop {row['decode_loop_tokens_per_s']:.1f})" if "decode_loop_tokens_per_s" in row else ""
        print(f"| {row['runtime']} | {row['dtype']} | {row['prefill_tokens_per_s']:.1f} | "
              f"{row['decode_tokens_per_s']:.1f}{loop} | {row['decode_percent_of_bound']:.0f}% | "
              f"{row['prefill_vs_transformers']:.2f}× / {row['decode_vs_transformers']:.2f}× | "
              f"{same_tokens_cell(row)} |")  # fmt: skip


def bench_torch(name: str, shape: dict, args) -> dict:
    """The shape's weights folder and its torch rows (ours fp32 first: the tokens' reference)."""
    import torch

    prefill, decode = (QUICK_PREFILL, QUICK_DECODE) if args.quick else (PREFILL, DECODE)
    repeats = 1 if args.quick else REPEATS
    folder = make_weights(shape, args.work_dir / name / "hf")
    prompt = torch.randint(0, shape["vocab_size"], (1, prefill), generator=torch.Generator().manual_seed(1))
    rows = [measure_torch(runtime, dtype, folder, prompt, decode, repeats) for runtime, dtype in TORCH_RUNTIMES]
    parameters = sum(p.numel() for p in load_model("ours", "fp32", folder).parameters())
    return {"shape": {**COMMON_SHAPE, **shape}, "parameters": parameters, "prefill": prefill, "decode": decode,
            "decode_prompt": prompt[0, :1].tolist(), "repeats": repeats, "rows": rows}  # fmt: skip


RATES = ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_loop_tokens_per_s")


def median_of_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One round's rows, each rate the median of that row's rate over `rounds` (lists of rows in the same order);
    every round's value under `rounds_<rate>`."""
    merged = []
    for rows in zip(*rounds, strict=True):
        row = dict(rows[0])
        for rate in RATES:
            if rate in row:
                row[f"rounds_{rate}"] = [each[rate] for each in rows]
                row[rate] = statistics.median(row[f"rounds_{rate}"])
        merged.append(row)
    return merged


def llama_cpp_built() -> bool:
    return all(llama_cpp_binary(name).exists() for name in LLAMA_CPP_TARGETS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="a tiny shape, prefill 32, decode 8, 1 repeat (seconds)")
    parser.add_argument("--skip-llama-cpp", action="store_true", help="torch runtimes only")
    parser.add_argument("--build-llama-cpp", action="store_true", help=f"build llama.cpp into {LLAMA_CPP_DIR} first")
    parser.add_argument("--convert-python", type=Path, default=converter_python(),
                        help="the python that runs llama.cpp's converter (default: the build's venv)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=CACHE / "bench_decode", help="weights and GGUF files")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every runtime this many times over and report medians (default 1)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None,
                        help="default: bench/results/bench_decode.json; --quick: the temp folder")  # fmt: skip
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be a positive number of rounds, got {args.rounds}")

    import torch
    from transformers.utils import logging

    torch.set_num_threads(THREADS)
    logging.disable_progress_bar()
    if args.build_llama_cpp and not args.skip_llama_cpp:
        build_llama_cpp()
    report = machine()
    print(f"CPU: {report['cpu']}, flags: {' '.join(report['cpu_flags'])}; torch {report['torch']}, "
          f"transformers {report['transformers']}, {THREADS} threads")  # fmt: skip
    load_before = os.getloadavg()[0]
    print(f"1-minute load average before: {load_before:.2f}")
    shapes = SHAPES if args.shape == "all" else {args.shape: SHAPES[args.shape]}
    if args.quick:
        shapes = {"quick": QUICK_SHAPE}
    with_llama_cpp = not args.skip_llama_cpp and llama_cpp_built()
    if not args.skip_llama_cpp and not with_llama_cpp:
        print(f"llama.cpp is not built in {LLAMA_CPP_DIR}: its rows are skipped (build it: --build-llama-cpp)")
    rounds, bandwidths = [], []
    for _ in range(args.rounds):  # each round: the bandwidth, the torch rows, then llama.cpp's
        bandwidths.append(memory_bandwidth_gbs(2**20 if args.quick else 2**27, 1 if args.quick else REPEATS))
        results = {name: bench_torch(name, shape, args) for name, shape in shapes.items()}
        for name, result in results.items():
            if with_llama_cpp:
                folder = args.work_dir / name / "hf"
                sizes = (result["prefill"], result["decode"], result["repeats"])
                rows, failures = measure_llama_cpp(folder, folder.parent, *sizes, args.convert_python)
                result["rows"] += rows
                result.setdefault("llama_cpp_failures", []).append(failures)
        rounds.append(results)
    bandwidth = statistics.median(bandwidths)
    for name, result in results.items():
        result["rows"] = median_of_rounds([each[name]["rows"] for each in rounds])
        result["rounds"] = args.rounds
        finish_rows(result["rows"], bandwidth)
        title = (f"{name}: {shapes[name]}, {result['parameters'] / 1e6:.1f} M parameters, prefill {result['prefill']}, "
                 f"decode {result['decode']}, batch 1, {THREADS} threads, bound at {bandwidth:.1f} GB/s, medians "
                 f"of {args.rounds} round(s)")  # fmt: skip
        print_table(title, result["rows"])
    load_after = os.getloadavg()[0]
    print(f"\n1-minute load average after: {load_after:.2f}")
    output = {"machine": report, "load_average_1min_before": load_before, "load_average_1min_after": load_after,
              "memory_bandwidth_gbs": bandwidth, "llama_cpp_python_version": LLAMA_CPP_PYTHON_VERSION if with_llama_cpp
              else None, "shapes": results}  # fmt: skip
    path = args.output or (Path(tempfile.gettempdir()) / "bench_decode.json" if args.quick else RESULTS)
    print(f"wrote {write_json(output, path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
