"""The pretrained base that ships in the package: made by tools/make_demo_base.py's recipe (recorded and recomputed),
the recorded weights, loadable through the Auto classes, describing easy-VQA test images it never saw (checked
against the labels read from their questions), and unable to answer questions (it never saw one)."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

import mamba_multimodal  # noqa: F401  (registers the Auto classes)
from mamba_multimodal.processing.processing_vlm_mamba import caption_prompt, vqa_prompt
from mamba_multimodal.training.data.easy_vqa import easy_vqa_image_labels, load_easy_vqa, load_easy_vqa_captions
from mamba_multimodal.training.demo import BASE_ARGV, base_model_path, base_recipe, sha256_of
from mamba_multimodal.training.metrics import vqa_accuracy

SHIPPED = {"config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
           "tokenizer_config.json", "chat_template.jinja", "recipe.json"}  # fmt: skip


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads((base_model_path() / "recipe.json").read_text())


@pytest.fixture(scope="module")
def base():
    path = base_model_path()
    return AutoModelForImageTextToText.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)


def test_the_recorded_recipe_is_what_the_script_runs_now(recorded):
    now = base_recipe()
    for key in ("command", "model_config", "training_arguments", "data", "seed"):
        assert recorded[key] == now[key], f"{key} changed since the base was made: run tools/make_demo_base.py"
    assert recorded["command"] == "mamba-multimodal " + " ".join(BASE_ARGV)
    assert recorded["data"]["rows"] == 3542 and recorded["seed"] == 0
    assert recorded["data"]["rows"] == len(load_easy_vqa_captions(("train",))["train"])


def test_the_folder_holds_the_recorded_weights_and_nothing_else(recorded):
    path = base_model_path()
    assert {file.name for file in path.iterdir()} == SHIPPED
    assert sum(file.stat().st_size for file in path.iterdir()) <= 20e6
    assert sha256_of(path / "model.safetensors") == recorded["model_safetensors_sha256"]
    # No pointer to a remote-code bundle the folder does not carry (the installed package serves these classes).
    assert not any("auto_map" in file.read_text() for file in path.glob("*.json") if file.name != "recipe.json")
    shipped = json.loads(json.dumps(AutoConfig.from_pretrained(path).to_dict()))
    added_by_save = {"architectures", "dtype", "_name_or_path"}  # save_pretrained and from_pretrained set them
    assert {key: shipped[key] for key in recorded["model_config"] if key not in added_by_save} == {
        key: value for key, value in recorded["model_config"].items() if key not in added_by_save
    }


@torch.no_grad()
def _generate(model, processor, images, prompts) -> list[str]:
    inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    return [text.strip() for text in processor.batch_decode(generated, input_ids=inputs["input_ids"])]


def test_the_base_describes_test_images_it_never_saw(base):
    model, processor = base
    labels = easy_vqa_image_labels("test")  # read from the test questions, independently of the model
    test = load_easy_vqa(("test",))["test"]
    first_row = {}
    for index, image_id in enumerate(test["image_id"]):
        first_row.setdefault(image_id, index)
    image_ids = sorted(labels)[:32]
    images = [test[first_row[image_id]]["image"].convert("RGB") for image_id in image_ids]
    descriptions = _generate(model, processor, images, [caption_prompt()] * len(images))
    right = [
        description.split() == ["a", labels[image_id]["color"], labels[image_id]["shape"]]
        for image_id, description in zip(image_ids, descriptions, strict=True)
    ]
    assert sum(right) >= 0.8 * len(right), list(zip(image_ids, descriptions, strict=True))


def test_the_base_cannot_answer_questions_yet(base):
    model, processor = base
    questions = load_easy_vqa(("test",))["test"].select(range(200))
    images = [image.convert("RGB") for image in questions["image"]]
    answers = _generate(model, processor, images, [vqa_prompt(question) for question in questions["question"]])
    assert vqa_accuracy(answers, questions["answers"]) < 0.2
