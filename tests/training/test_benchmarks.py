"""`mamba-multimodal evaluate gqa|textvqa|pope|vqa`: the recorded prompts (LLaVA-1.5, Cobra) as hand-written strings,
and each benchmark run on its official-layout fixture with a tiny saved VLM, its table checked against answers
generated one question at a time from hand-written prompts and scored with the metrics."""

import pytest
import torch
from fixtures_benchmarks import write_gqa, write_pope, write_textvqa
from fixtures_vlm import write_vqa
from test_cli import run, table

from mamba_multimodal.processing.processing_vlm_mamba import VLMambaProcessor, vqa_prompt
from mamba_multimodal.training import builders
from mamba_multimodal.training.data import load_gqa, load_pope, load_textvqa, load_vqa_v2
from mamba_multimodal.training.metrics import gqa_accuracy, pope_metrics, vqa_accuracy
from mamba_multimodal.training.prompts import benchmark_prompts, benchmark_texts
from mamba_multimodal.training.recipes import easy_vqa_vlm_config, vlm_and_processor

SHORT = "Answer the question using a single word or phrase."


# ------------------------------------------------------------------------------------------------ prompts
@pytest.mark.parametrize("task", ["vqa", "gqa", "pope"])
@pytest.mark.parametrize("style", ["llava-1.5", "cobra"])
def test_short_answer_prompts_of_llava_and_cobra(task, style):
    assert benchmark_texts(task, style, ["Is there a car in the image?"]) == [
        "Is there a car in the image?\nAnswer the question using a single word or phrase."
    ]


def test_textvqa_prompts_put_the_ocr_tokens_after_llavas_question_and_before_cobras():
    questions, ocr = ["what brand is it?", "what number?"], [["NOKIA", "connecting"], []]
    assert benchmark_texts("textvqa", "llava-1.5", questions, ocr) == [
        f"what brand is it?\nReference OCR token: NOKIA, connecting\n{SHORT}",
        f"what number?\n{SHORT}",  # no OCR tokens: no OCR line
    ]
    assert benchmark_texts("textvqa", "cobra", questions, ocr) == [
        f"Reference OCR token: NOKIA, connecting\nwhat brand is it?\n{SHORT}",
        f"what number?\n{SHORT}",
    ]
    assert benchmark_texts("textvqa", "question", questions, ocr) == questions


def test_prompts_go_through_the_chat_template_and_the_question_style_is_the_trained_vqa_prompt():
    processor = VLMambaProcessor()
    questions = ["what shape is it?", "is it red?"]
    assert benchmark_prompts(processor, "vqa", "question", questions) == [vqa_prompt(q) for q in questions]
    assert benchmark_prompts(processor, "gqa", "llava-1.5", questions[:1]) == [
        f"<image>Question: what shape is it?\n{SHORT} Answer:"
    ]


# ------------------------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_vlm")
    torch.manual_seed(0)
    model, processor = vlm_and_processor(easy_vqa_vlm_config("tiny"))
    model.save_pretrained(folder, processor=processor)
    return folder, model.eval(), processor


@torch.no_grad()
def one_by_one(model, processor, split, prompt) -> list[str]:
    """Greedy answers, one question at a time (no padding), from a hand-written prompt."""
    answers = []
    for row in split:
        inputs = processor(images=[row["image"].convert("RGB")], text=[prompt(row)], return_tensors="pt")
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        answers.append(processor.batch_decode(generated, input_ids=inputs["input_ids"])[0].strip())
    return answers


def llava(row) -> str:
    return f"<image>Question: {row['question']}\n{SHORT} Answer:"


@pytest.fixture
def generated(monkeypatch):
    """What the scorer generates: {"prompts": [...], "answers": [...]} of its batched `generate_answers` call."""
    seen = {}

    def recording(model, processor, split, prompts, max_new_tokens, batch_size=64):
        seen["prompts"], seen["batch_size"] = list(prompts), batch_size
        seen["answers"] = generate_answers(model, processor, split, prompts, max_new_tokens, batch_size)
        return seen["answers"]

    generate_answers = builders.generate_answers
    monkeypatch.setattr(builders, "generate_answers", recording)
    return seen


def evaluate(task, folder, data, capsys, *options):
    argv = ["evaluate", task, "--model", str(folder), "--dataset", str(data), "--per-device-eval-batch-size", "2"]
    code, out, err = run([*argv, *options], capsys)
    assert code == 0, err
    return table(out), out


def check_generated(generated, model, processor, split, prompt) -> list[str]:
    """The scorer's prompts are the hand-written ones and its batched answers those generated one by one."""
    assert generated["prompts"] == [prompt(row) for row in split] and generated["batch_size"] == 2
    answers = one_by_one(model, processor, split, prompt)
    assert generated["answers"] == answers
    return answers


def test_evaluate_gqa_prints_accuracy_by_type(tiny_vlm, generated, tmp_path, capsys):
    folder, model, processor = tiny_vlm
    write_gqa(tmp_path)
    metrics, out = evaluate("gqa", folder, tmp_path, capsys)
    testdev = load_gqa(tmp_path)["testdev"]
    expected = gqa_accuracy(check_generated(generated, model, processor, testdev, llava), testdev["answer"])
    assert metrics["GQA accuracy"] == pytest.approx(expected, abs=1e-4)
    assert {"GQA accuracy (binary)", "GQA accuracy (open)", "GQA accuracy (query)", "GQA accuracy (attribute)",
            "GQA accuracy (scene)"} <= set(metrics)  # fmt: skip
    assert "testdev, prompts llava-1.5" in out and "5 eval examples" in out


def test_evaluate_textvqa_with_cobras_prompts(tiny_vlm, generated, tmp_path, capsys):
    folder, model, processor = tiny_vlm
    write_textvqa(tmp_path)
    metrics, _ = evaluate("textvqa", folder, tmp_path, capsys, "--prompt-style", "cobra")
    validation = load_textvqa(tmp_path)["validation"]

    def cobra(row):
        ocr = f"Reference OCR token: {', '.join(row['ocr_tokens'])}\n" if row["ocr_tokens"] else ""
        return f"<image>Question: {ocr}{row['question']}\n{SHORT} Answer:"

    answers = check_generated(generated, model, processor, validation, cobra)
    expected = vqa_accuracy(answers, validation["answers"], normalization="textvqa")
    assert metrics == pytest.approx({"TextVQA accuracy": expected}, abs=1e-4)


def test_evaluate_pope_prints_each_category(tiny_vlm, generated, tmp_path, capsys):
    folder, model, processor = tiny_vlm
    write_pope(tmp_path)
    metrics, _ = evaluate("pope", folder, tmp_path, capsys)
    test = load_pope(tmp_path)["test"]
    answers = check_generated(generated, model, processor, test, llava)
    expected = {}
    for category in ("adversarial", "popular", "random"):
        rows = [index for index, name in enumerate(test["category"]) if name == category]
        values = pope_metrics([answers[i] for i in rows], [test["answer"][i] for i in rows])
        expected.update({f"POPE {name} ({category})": value for name, value in values.items()})
    assert {name: metrics[name] for name in expected} == pytest.approx(expected, abs=1e-4)
    mean_f1 = sum(expected[f"POPE f1 ({c})"] for c in ("adversarial", "popular", "random")) / 3
    assert metrics["POPE F1 (mean over categories)"] == pytest.approx(mean_f1, abs=1e-4)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "gqa", "--model", "tiny", "--dataset", "."], "evaluation only"),
        (["evaluate", "pope", "--model", "."], "--dataset"),
        (["evaluate", "gqa", "--model", ".", "--dataset", ".", "--prompt-style", "vicuna"], "--prompt_style"),
        (["evaluate", "gqa", "--model", ".", "--dataset", "."], "testdev_balanced_questions.json"),
    ],
)
def test_benchmark_mistakes_are_one_line(argv, named, capsys):
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], err


def test_evaluate_vqa_v2_with_llavas_prompts(tiny_vlm, generated, tmp_path, capsys):
    folder, model, processor = tiny_vlm
    write_vqa(tmp_path, "val2014")
    metrics, _ = evaluate("vqa", folder, tmp_path, capsys, "--prompt-style", "llava-1.5", "--max-eval-samples", "4")
    validation = load_vqa_v2(tmp_path)["validation"].select(range(4))
    answers = check_generated(generated, model, processor, validation, llava)
    assert metrics["VQA accuracy"] == pytest.approx(vqa_accuracy(answers, validation["answers"]), abs=1e-4)
