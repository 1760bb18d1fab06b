"""A saved VLM-Mamba folder through lmms-eval's own generic chat model (`--model huggingface`, remote code) on an
easy-VQA task defined locally: the same answers, question by question, and the same score as
`mamba-multimodal evaluate vqa` on the same questions.

lmms-eval is not in the tested lock (its CUDA-built torchvision does not load with CPU torch): `make test-lmms-eval`
builds `.venv-lmms-eval` (a copy of .venv, lmms-eval without its dependencies, and the few it imports on this path)
and runs this file there; elsewhere it skips. What had to be worked around, each checked below:
- lmms-eval 0.7.3 loads `AutoModel` for every model under transformers 5 (its `model_type in
  AutoModelForImageTextToText._model_mapping.keys()` test compares a string with config classes), then calls
  `generate`: the folder's `auto_map["AutoModel"]` is pointed at the generating class (`let_auto_model_generate`).
- it loads every model in bfloat16 (hard-coded `torch_dtype`): our side evaluates the same weights in bfloat16 (the
  folder is saved in bfloat16, which `from_pretrained` keeps). In float32 one answer in 64 differed (0.6406 / 0.625).
- it calls the processor with `videos=[]` and `audios=[]`, which VLMambaProcessor accepts as "no video / audio".
- its vqav2 metric (min(1, matches among the other answers / 3)) scores 0 with easy-VQA's single answer: the task
  (`fixtures/lmms_eval_task/easy_vqa_lmms.py`) uses lmms-eval's answer normalisation then exact match, which is what
  `vqa_accuracy` computes for one answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

try:
    import lmms_eval  # noqa: F401
except ImportError:
    if os.environ.get("LMMS_EVAL_REQUIRED"):  # make test-lmms-eval: a broken environment fails, never skips
        raise
    pytest.skip(
        "lmms-eval is not installed here: `make test-lmms-eval` runs this test in .venv-lmms-eval",
        allow_module_level=True,
    )

from mamba_multimodal import VLMambaForConditionalGeneration, VLMambaProcessor
from mamba_multimodal.sharing import let_auto_model_generate
from mamba_multimodal.training import builders, cli
from mamba_multimodal.training.data import load_easy_vqa
from mamba_multimodal.training.demo import base_model_path

pytestmark = pytest.mark.slow

QUESTIONS = 32  # the first test questions of easy-VQA; `evaluate --max-eval-samples` takes the same ones
TASK_HELPERS = Path(__file__).parent / "fixtures" / "lmms_eval_task" / "easy_vqa_lmms.py"
TASK_YAML = """\
task: easy_vqa_local
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {parquet}
test_split: test
output_type: generate_until
doc_to_visual: !function easy_vqa_lmms.doc_to_visual
doc_to_text: !function easy_vqa_lmms.doc_to_text
doc_to_target: multiple_choice_answer
generation_kwargs:
  max_new_tokens: 8
process_results: !function easy_vqa_lmms.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  - version: 0.0
"""


def run_cli(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def vqa_model(tmp_path: Path, capsys) -> Path:
    """The shipped base fine-tuned on easy-VQA for 10 steps (answers that score neither 0 nor 1), saved in bfloat16
    with remote code and `AutoModel` naming the generating class."""
    trained = tmp_path / "trained"
    run_cli(["train", "vqa", "--model", str(base_model_path()), "--max-steps", "10", "--max-eval-samples", "8",
             "--per-device-train-batch-size", "16", "--output-dir", str(trained)], capsys)  # fmt: skip
    folder = tmp_path / "model"
    model = VLMambaForConditionalGeneration.from_pretrained(trained, dtype=torch.bfloat16)
    model.save_pretrained(folder, processor=VLMambaProcessor.from_pretrained(trained))
    let_auto_model_generate(folder)
    return folder


def write_task(tmp_path: Path) -> Path:
    """The task folder for --include_path: its YAML over a parquet file of the first QUESTIONS test questions."""
    task = tmp_path / "task"
    task.mkdir()
    parquet = tmp_path / "easy_vqa_test.parquet"
    load_easy_vqa()["test"].select(range(QUESTIONS)).to_parquet(str(parquet))
    shutil.copy(TASK_HELPERS, task)
    (task / "easy_vqa_local.yaml").write_text(TASK_YAML.format(parquet=parquet))
    return task


def run_lmms_eval(folder: Path, task: Path, tmp_path: Path) -> tuple[float, list[str]]:
    """lmms-eval's CLI in a subprocess, offline: the score and the answers in question order."""
    output = tmp_path / "lmms_eval_out"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "lmms_eval", "--model", "huggingface",
               "--model_args", f"pretrained={folder},trust_remote_code=True,device=cpu,device_map=cpu",
               "--tasks", "easy_vqa_local", "--include_path", str(task), "--batch_size", "8",
               "--output_path", str(output), "--log_samples"]  # fmt: skip
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-4000:]
    (results,) = output.glob("*/*_results.json")
    (samples,) = output.glob("*/*_samples_easy_vqa_local.jsonl")
    score = json.loads(results.read_text())["results"]["easy_vqa_local"]["exact_match,none"]
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda row: row["doc_id"])
    return score, [row["resps"] for row in rows]


def our_evaluation(folder: Path, capsys, monkeypatch) -> tuple[float, list[str]]:
    """`mamba-multimodal evaluate vqa` on the same questions: the printed accuracy and the answers it scored."""
    answers = []

    def recording(*args, **kwargs):
        answers.extend(generate_answers(*args, **kwargs))
        return answers

    generate_answers = builders.generate_answers
    monkeypatch.setattr(builders, "generate_answers", recording)
    out = run_cli(["evaluate", "vqa", "--model", str(folder), "--max-eval-samples", str(QUESTIONS)], capsys)
    accuracy = re.search(r"\| VQA accuracy +\| ([0-9.]+) +\|", out)
    assert accuracy is not None, out
    return float(accuracy.group(1)), answers


def test_lmms_eval_scores_a_saved_folder_as_evaluate_vqa_does(tmp_path, capsys, monkeypatch):
    folder = vqa_model(tmp_path, capsys)
    score, lmms_answers = run_lmms_eval(folder, write_task(tmp_path), tmp_path)
    accuracy, our_answers = our_evaluation(folder, capsys, monkeypatch)
    # lmms-eval keeps the decoded text as generated (" circle"); evaluate strips it
    assert [answer.strip() for answer in lmms_answers] == our_answers
    assert 0 < score < 1  # the answers are neither all right nor all wrong: the comparison sees the metric
    assert score == pytest.approx(accuracy, abs=5e-5)  # evaluate prints 4 decimals
