"""bench/bench_decode.py: its --quick path without llama.cpp (the JSON's structure; every token claim against greedy
decoding recomputed here without a cache) and its llama.cpp glue on output captured from a real run."""

import importlib
import json
from pathlib import Path

import pytest
import torch
from tokenizers import decoders, pre_tokenizers
from transformers import MambaForCausalLM as TransformersMambaForCausalLM

BENCH = Path(__file__).resolve().parents[2] / "bench"
# What `llama-bench -m model-f32.gguf -m model-q8_0.gguf -p 32 -n 8 -t 2 -r 3 -o json` printed on the demo shape.
LLAMA_BENCH_OUTPUT = Path(__file__).resolve().parent / "fixtures" / "llama_bench.json"


@pytest.fixture
def bench_decode(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/common.py as `common`
    return importlib.import_module("bench_decode")


def greedy_without_cache(folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy tokens from transformers' own model, the whole sequence forwarded again for each one."""
    model = TransformersMambaForCausalLM.from_pretrained(folder).eval()
    sequence = torch.tensor([prompt])
    with torch.inference_mode():
        for _ in range(new_tokens):
            next_token = model(input_ids=sequence, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, next_token], dim=1)
    return sequence[0, len(prompt) :].tolist()


def test_the_quick_run_reports_every_torch_runtime_and_true_token_claims(bench_decode, tmp_path, capsys):
    output = tmp_path / "bench_decode.json"
    arguments = ["--quick", "--skip-llama-cpp", "--rounds", "2", "--work-dir", str(tmp_path / "work"),
                 "--output", str(output)]  # fmt: skip

    assert bench_decode.main(arguments) == 0

    report = json.loads(output.read_text())
    assert report["memory_bandwidth_gbs"] > 0 and report["machine"]["threads"] == 2
    assert {"load_average_1min_before", "load_average_1min_after"} <= report.keys()
    (shape,) = report["shapes"].values()
    rows = shape["rows"]
    runtimes = [(row["runtime"], row["dtype"]) for row in rows]
    assert runtimes == [("ours", "fp32"), ("transformers", "fp32"), ("ours", "bf16")]
    assert shape["rounds"] == 2 and all(len(row["rounds_decode_tokens_per_s"]) == 2 for row in rows)
    assert rows[1]["weight_bytes"] == rows[0]["weight_bytes"] == 2 * rows[2]["weight_bytes"]
    reference = greedy_without_cache(tmp_path / "work" / "quick" / "hf", shape["decode_prompt"], shape["decode"])
    assert rows[0]["tokens"] == reference
    for row in rows:
        assert min(row["prefill_tokens_per_s"], row["decode_tokens_per_s"], row["decode_loop_tokens_per_s"]) > 0
        assert row["decode_percent_of_bound"] == pytest.approx(
            100 * row["decode_tokens_per_s"] * row["weight_bytes"] / (report["memory_bandwidth_gbs"] * 1e9)
        )
        assert row["same_tokens"] == (row["tokens"] == reference)
        assert row["compared_tokens"] == len(row["tokens"]) == shape["decode"]
    assert rows[0]["loop_tokens_equal_generate"] and rows[1]["loop_tokens_equal_generate"]
    assert rows[1]["same_tokens"]  # transformers' fp32 model decodes the same tokens as ours
    printed = capsys.readouterr().out
    assert "| transformers | fp32 |" in printed and "1-minute load average before" in printed


def test_rounds_report_the_median_of_each_rate_and_keep_every_round(bench_decode):
    rows = [{"runtime": "ours", "dtype": "fp32", "prefill_tokens_per_s": rate, "decode_tokens_per_s": 2 * rate}
            for rate in (30.0, 10.0, 20.0)]  # fmt: skip
    (merged,) = bench_decode.median_of_rounds([[row] for row in rows])
    assert merged["prefill_tokens_per_s"] == 20.0 and merged["decode_tokens_per_s"] == 40.0
    assert merged["rounds_prefill_tokens_per_s"] == [30.0, 10.0, 20.0]
    assert "decode_loop_tokens_per_s" not in merged and (merged["runtime"], merged["dtype"]) == ("ours", "fp32")


def test_llama_bench_json_gives_the_median_rate_of_each_file_and_test(bench_decode):
    rates = bench_decode.parse_llama_bench(LLAMA_BENCH_OUTPUT.read_text())

    assert rates == {
        "model-f32.gguf": {"prefill_tokens_per_s": 14.417, "decode_tokens_per_s": 3.54348},
        "model-q8_0.gguf": {"prefill_tokens_per_s": 21.6821, "decode_tokens_per_s": 17.8674},
    }


def test_token_bytes_match_the_byte_level_decoder_of_tokenizers(bench_decode):
    text = "Hello world\n\té— 😀 \x00\x7f"
    pieces = [piece for piece, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)]

    printed = bench_decode.token_bytes(list(range(len(pieces))), pieces)

    assert printed == text.encode("utf-8") and decoders.ByteLevel().decode(pieces) == text


def test_llama_tokenize_ids_are_read_from_its_last_line(bench_decode):
    assert bench_decode.parse_token_ids("some log line\n[510, 3158, 8516]\n") == [510, 3158, 8516]
