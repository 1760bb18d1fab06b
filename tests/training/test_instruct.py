"""`mamba-multimodal train / evaluate instruct` on LLaVA files in the released layouts, with a tiny model: the run, its
held-out loss, --image-root, and one-line mistakes."""

import json
import math

import datasets
import pytest
from fixtures_llava import write_alignment, write_instructions
from test_cli import TINY_RUN, run, table

from mamba_multimodal.training.tasks import TASKS


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """load_llava's Arrow files go to a temporary cache, not the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))


def test_train_then_evaluate_instruct_on_the_instruction_mix(tmp_path, capsys):
    json_path = write_instructions(tmp_path / "data")
    output = tmp_path / "run"
    code, out, err = run(["train", "instruct", "--dataset", str(json_path), *TINY_RUN, "--output-dir", str(output)],
                         capsys)  # fmt: skip
    assert code == 0, err
    assert f"data: {json_path}, 6 train / 1 eval examples" in out  # 7 rows, a tenth (at least one) held out
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics) == {"eval loss", "perplexity"} and math.isclose(
        metrics["perplexity"], math.exp(metrics["eval loss"]), rel_tol=1e-6
    )
    assert table(out) == pytest.approx(metrics, rel=1e-3)
    for name in ("config.json", "model.safetensors", "processor_config.json", "chat_template.jinja"):
        assert (output / name).is_file(), name
    code, out, err = run(["evaluate", "instruct", "--model", str(output), "--dataset", str(json_path)], capsys)
    assert code == 0, err
    assert table(out) == pytest.approx(metrics, rel=1e-4)  # the same held-out row, the saved model


def test_image_root_names_the_folder_of_the_images(tmp_path, capsys):
    json_path = write_alignment(tmp_path / "LLaVA-Pretrain")  # images in LLaVA-Pretrain/images/00453/...
    argv = ["train", "instruct", "--dataset", str(json_path), *TINY_RUN, "--output-dir", str(tmp_path / "run")]
    code, _, err = run(argv, capsys)
    lines = [line for line in err.strip().splitlines() if not line.startswith("Generating")]  # datasets' progress
    assert code == 2 and len(lines) == 1 and "--dataset: cannot load" in lines[0]
    assert "00453/004539375.jpg" in lines[0] and "is missing" in lines[0]
    code, out, err = run([*argv, "--image-root", str(tmp_path / "LLaVA-Pretrain" / "images")], capsys)
    assert code == 0 and "1 train / 1 eval examples" in out, err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ([], "--dataset: instruct needs a LLaVA-format JSON"),
        (["--dataset", "DATA", "--image-root", "./no/such/images"], "--image-root: no such folder"),
        (["--dataset", "./no/such.json"], "--dataset: no such file"),
    ],
)
def test_instruct_mistakes_are_one_line(tmp_path, capsys, extra, named):
    json_path = write_instructions(tmp_path / "data")
    extra = [str(json_path) if item == "DATA" else item for item in extra]
    code, _, err = run(["train", "instruct", *extra, "--model", "tiny", "--output-dir", str(tmp_path / "run")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], err


def test_instruct_is_a_vlm_task_with_cobras_paper_recipe():
    task = TASKS["instruct"]
    assert task.family == "vlm_mamba" and task.default_dataset is None
    assert task.recipes["paper"] is TASKS["vqa"].recipes["paper"]
