"""The Gradio Space of a saved folder (`mamba_multimodal.sharing.space`, `mamba-multimodal space / serve / push
--space`): the files a Space needs, each family's app computing what the package computes (run here with a stand-in
`gradio` module that records the interface, so the suite needs no gradio), and a push creating both repos in one
command against the stand-in Hub. The real gradio in a real browser: tests/test_browser.py (slow).
"""

import ast
import runpy
import sys
import types
from importlib import metadata

import numpy as np
import pytest
import torch
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement
from PIL import Image

from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.sharing.space import APPS, write_space
from mamba_multimodal.training.builders import generate_answers
from mamba_multimodal.training.prompts import benchmark_prompts
from mamba_multimodal.training.recipes import easy_vqa_vlm
from test_hub import cli, patterned_image, run_with_hub

LABELS = {i: f"label {i}" for i in range(7)}  # more than five: the app shows the top five
SCREEN_LINES = 60  # "the whole file fits on a screen"


def save_family(name: str, folder):
    """A tiny model of the family's served class, saved with its processor: (model, processor)."""
    torch.manual_seed(0)
    family = FAMILIES[name]
    if name == "vlm_mamba":
        model, processor = easy_vqa_vlm("tiny")
    else:
        config = family.tiny_config()
        if name == "mambavision":
            config.update({"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}})
        auto = "AutoModelForImageClassification" if name == "mambavision" else "AutoModelForSequenceClassification"
        model, processor = family.auto_models[auto](config), family.processor_class.from_model_config(config)
    model.eval().save_pretrained(folder, processor=processor)
    return model, processor


@pytest.fixture(scope="module", params=["vlm_mamba", "mambavision", "coupled_mamba"])
def saved(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / "model"
    model, processor = save_family(request.param, folder)
    return request.param, folder, model, processor


class RecordedInterface:
    """What `gr.Interface(fn, inputs, outputs, ...)` was given."""

    def __init__(self, fn, inputs, outputs, **settings):
        self.fn, self.inputs, self.outputs, self.settings = fn, inputs, outputs, settings

    def launch(self):
        raise AssertionError("run_path with a name other than __main__ must not launch")


def run_app(app, monkeypatch, model_id):
    """The app's module globals, run with a stand-in gradio module and MODEL_ID = `model_id`."""
    stand_in = types.ModuleType("gradio")
    stand_in.Interface = RecordedInterface
    for component in ("Image", "Textbox", "Label", "Number", "File"):
        setattr(stand_in, component, lambda *args, _name=component, **kwargs: (_name, kwargs))
    monkeypatch.setitem(sys.modules, "gradio", stand_in)
    monkeypatch.setenv("MODEL_ID", str(model_id))
    return runpy.run_path(str(app), run_name="space_app")


def test_space_has_app_requirements_and_the_space_metadata(saved, tmp_path):
    name, folder, _, _ = saved
    examples = [(patterned_image(32), "what shape is it?")]
    write_space(folder, tmp_path / "space", model_id="tester/model", examples=examples)
    files = {p.relative_to(tmp_path / "space").as_posix() for p in (tmp_path / "space").rglob("*") if p.is_file()}
    expected = {"app.py", "requirements.txt", "README.md"}
    assert files == expected | ({"examples/0.png"} if name == "vlm_mamba" else set())
    card = SpaceCard.load(tmp_path / "space" / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.models == ["tester/model"]
    app = (tmp_path / "space" / "app.py").read_text()
    ast.parse(app)
    assert len(app.splitlines()) <= SCREEN_LINES
    assert 'os.environ.get("MODEL_ID", "tester/model")' in app and "trust_remote_code=True" in app
    assert "mamba_multimodal" not in app.replace("written by mamba_multimodal", "")  # runs without the package
    written = [Requirement(line) for line in (tmp_path / "space" / "requirements.txt").read_text().splitlines()]
    # The installed package's ranges (pyproject.toml's when it was installed), transformers' cap included.
    declared = {Requirement(line).name: Requirement(line).specifier for line in metadata.requires("mamba-multimodal")}
    assert [r.name for r in written] == ["torch", "transformers", "numpy", "pillow"]
    assert all(r.specifier == declared[r.name] for r in written) and written[1].specifier.contains("5.26") is False


def test_each_app_computes_what_the_package_computes(saved, tmp_path, monkeypatch):
    name, folder, model, processor = saved
    image = patterned_image(64)
    examples = [(image, "what shape is it?")]
    app = write_space(folder, tmp_path / "space", model_id="tester/model", examples=examples) / "app.py"
    monkeypatch.chdir(tmp_path / "space")
    interface = run_app(app, monkeypatch, folder)["demo"]
    if name == "vlm_mamba":
        # evaluate vqa's own generation: the question prompt style through the chat template, 8 tokens, greedy
        rows = {"image": [image]}
        prompts = benchmark_prompts(processor, "vqa", "question", ["what shape is it?"])
        expected = generate_answers(model, processor, _Rows(rows), prompts, max_new_tokens=8)[0]
        assert interface.fn(image, "what shape is it?") == expected
        assert interface.settings["examples"] == [["examples/0.png", "what shape is it?"]]
    elif name == "mambavision":
        with torch.no_grad():
            probabilities = model(**processor(images=image, return_tensors="pt")).logits[0].softmax(-1)
        top = probabilities.topk(5)
        expected = {LABELS[i]: p for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)}
        got = interface.fn(image)
        assert list(got) == list(expected) and np.allclose(list(got.values()), list(expected.values()), atol=1e-6)
    else:
        rng = np.random.default_rng(0)
        clip = {m: rng.normal(size=(5, size)).astype("float32")
                for m, size in zip(model.config.modalities, model.config.input_sizes, strict=True)}  # fmt: skip
        np.savez(tmp_path / "clip.npz", **clip)
        with torch.no_grad():
            score = float(model(**processor({f"{m}_features": v for m, v in clip.items()})).logits[0, 0])
        got_score, got_class = interface.fn(str(tmp_path / "clip.npz"))
        assert got_score == pytest.approx(score, abs=1e-6)
        assert got_class == ("positive" if score > 0 else "negative")


class _Rows:
    """The slice of a datasets.Dataset that `generate_answers` reads: len() and rows[a:b] as columns."""

    def __init__(self, columns):
        self.columns = columns

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def __getitem__(self, window):
        return {key: values[window] for key, values in self.columns.items()}


def test_every_served_class_is_a_family_class():
    classes = {path.rsplit(".", 1)[1] for family in FAMILIES.values() for path in family.model_names.values()}
    assert set(APPS) <= classes


def test_cli_space_of_a_folder_that_is_not_a_saved_model_says_so(tmp_path, capsys):
    from mamba_multimodal_cli import main

    assert main(["space", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "no config.json" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_space_of_a_model_without_an_app_names_the_apps(tmp_path, capsys):
    from mamba_multimodal_cli import main

    config = FAMILIES["mambavision"].tiny_config()
    FAMILIES["mambavision"].auto_models["AutoModel"](config).save_pretrained(tmp_path / "backbone")
    assert main(["space", str(tmp_path / "backbone"), str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "no Space app for MambaVisionModel" in error and "MambaVisionForImageClassification" in error


@pytest.fixture
def stand_in_hub(tmp_path):
    from hub_server import StandInHub

    with StandInHub(token="hf_test") as server:
        server.home = tmp_path / "hf_home"
        yield server


def test_cli_push_with_space_creates_the_model_and_its_space_in_one_command(tmp_path, stand_in_hub):
    folder = tmp_path / "vlm"
    save_family("vlm_mamba", folder)
    done = run_with_hub(stand_in_hub, cli("push", str(folder), "tester/vlm-tiny", "--space"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert stand_in_hub.repos == {"tester/vlm-tiny": {"private": False}}
    assert stand_in_hub.spaces == {"tester/vlm-tiny": {"private": False, "sdk": "gradio"}}
    model_commit, space_commit = stand_in_hub.commits
    assert model_commit["repo_id"] == "tester/vlm-tiny" and "model.safetensors" in model_commit["files"]
    assert space_commit["repo_id"] == "spaces/tester/vlm-tiny"
    assert set(space_commit["files"]) >= {"app.py", "requirements.txt", "README.md", "examples/0.png"}
    app = space_commit["files"]["app.py"].decode()
    assert 'os.environ.get("MODEL_ID", "tester/vlm-tiny")' in app
    assert "Space tester/vlm-tiny" in done.stdout


def test_cli_push_with_space_of_a_model_without_an_app_uploads_nothing(tmp_path, stand_in_hub):
    config = FAMILIES["mambavision"].tiny_config()
    FAMILIES["mambavision"].auto_models["AutoModel"](config).save_pretrained(tmp_path / "backbone")
    done = run_with_hub(stand_in_hub, cli("push", str(tmp_path / "backbone"), "tester/backbone", "--space"))
    assert done.returncode == 2 and "no Space app for MambaVisionModel" in done.stderr
    assert stand_in_hub.commits == [] and stand_in_hub.repos == {} and stand_in_hub.spaces == {}


def test_serve_without_gradio_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    from mamba_multimodal_cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # not importable, installed or not
    assert main(["serve", str(tmp_path)]) == 2
    assert "pip install 'mamba-multimodal[space]'" in capsys.readouterr().err


def test_examples_are_easy_vqa_test_questions_about_different_images():
    from mamba_multimodal.training.data import load_easy_vqa
    from mamba_multimodal.training.data.easy_vqa import example_questions

    examples = example_questions(3)
    test = load_easy_vqa(("test",))["test"]
    assert len(examples) == 3 and {question for _, question in examples} <= set(test["question"])
    assert all(isinstance(image, Image.Image) for image, _ in examples)
    assert len({image.tobytes() for image, _ in examples}) == 3
