"""A Gradio Space for a saved folder: `app.py` (one screen, loads the model by Hub id with `trust_remote_code`, so the
Space needs torch, transformers and gradio only), `requirements.txt` and a README whose front matter is the Space's
metadata; `serve` runs the same `app.py` on this machine against the local folder.

    write_space("runs/demo/vlm-mamba-easy-vqa", "space", model_id="me/vlm-mamba-easy-vqa")
    serve("runs/demo/vlm-mamba-easy-vqa", port=7860)          # http://127.0.0.1:7860

The app per family (`APPS`, by the model class the folder's config.json names):
- VLM-Mamba (`VLMambaForConditionalGeneration`): image + question → answer, greedy, as `evaluate vqa` generates it
  (the processor's chat template around the question, `max_new_tokens` 8), with easy-VQA test images as examples;
- MambaVision (`MambaVisionForImageClassification`): image → the top-5 labels (transformers' pipeline);
- Coupled Mamba (`CoupledMambaForSequenceClassification`): one clip's features → sentiment score and class. The
  upload is an `.npz` holding one (steps, features) array per modality, named as the config's modalities (`text`,
  `audio`, `vision`): the row of an MMSA pickle, `np.savez("clip.npz", **{m: data["test"][m][i] for m in ...})`.
  Not a pickle: unpickling an upload runs whatever code it holds, and a public Space takes anyone's file.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import runpy
import tempfile
from pathlib import Path

from .._version import __version__
from ..file_utils import staged_into
from .hub_id import as_hub_id
from .push import HubError, check_folder, check_repo_id

MODEL_ID_VARIABLE = "MODEL_ID"  # the app loads os.environ["MODEL_ID"] when set (serve: the local folder)
EXAMPLE_COUNT = 4
# What the app imports beside gradio (which the Space installs from the `sdk` of its README's metadata).
SPACE_REQUIREMENTS = ("torch", "transformers", "numpy", "pillow")

_HEADER = '''"""__TITLE__: a Gradio Space for __MODEL_ID__ (written by mamba_multimodal __VERSION__)."""

import os

import gradio as gr
import torch
from transformers import __IMPORTS__

# A Hub id, or a local folder (`mamba-multimodal serve FOLDER` sets MODEL_ID to it).
MODEL_ID = os.environ.get("MODEL_ID", "__MODEL_ID__")
'''
_LAUNCH = """
if __name__ == "__main__":
    demo.launch()  # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT pick the address
"""
_VQA = '''model = AutoModelForImageTextToText.from_pretrained(MODEL_ID, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(MODEL_ID, trust_remote_code=True)
EXAMPLES = __EXAMPLES__


@torch.inference_mode()
def answer(image, question):
    """Greedy, 8 new tokens, the question through the chat template: what `mamba-multimodal evaluate vqa` does."""
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    inputs = processor(images=[image.convert("RGB")], text=[prompt], return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    return processor.batch_decode(generated, input_ids=inputs["input_ids"])[0].strip()


demo = gr.Interface(
    answer,
    [gr.Image(type="pil", label="image"), gr.Textbox(label="question")],
    gr.Textbox(label="answer"),
    examples=EXAMPLES,
    title="__TITLE__",
    flagging_mode="never",
)
'''
_CLASSIFY = '''classify = pipeline("image-classification", model=MODEL_ID, trust_remote_code=True)


def top_labels(image):
    """The five most likely labels and their probabilities."""
    return {guess["label"]: guess["score"] for guess in classify(image.convert("RGB"), top_k=5)}


demo = gr.Interface(
    top_labels,
    gr.Image(type="pil", label="image"),
    gr.Label(num_top_classes=5, label="top 5"),
    title="__TITLE__",
    flagging_mode="never",
)
'''
_SENTIMENT = '''model = AutoModelForSequenceClassification.from_pretrained(MODEL_ID, trust_remote_code=True).eval()
processor = AutoFeatureExtractor.from_pretrained(MODEL_ID, trust_remote_code=True)


@torch.inference_mode()
def sentiment(path):
    """One clip's .npz (a (steps, features) array per modality: text, audio, vision) → (score, class)."""
    with np.load(path, allow_pickle=False) as clip:  # not a pickle: an upload must not run code
        features = {f"{m}_features": clip[m].astype("float32") for m in processor.modalities}
    logits = model(**processor(features)).logits[0]
    if logits.numel() == 1:  # regression: MMSA's score in [-3, 3], its sign the class
        score = float(logits[0])
        return score, "positive" if score > 0 else "negative" if score < 0 else "neutral"
    label = model.config.id2label[int(logits.argmax())]
    return float(logits.softmax(-1).max()), label


demo = gr.Interface(
    sentiment,
    gr.File(file_types=[".npz"], type="filepath", label="clip features (.npz: text, audio, vision)"),
    [gr.Number(label="score"), gr.Textbox(label="class")],
    title="__TITLE__",
    flagging_mode="never",
)
'''
# {config.json architecture: (what transformers imports, the app's body, what the Space is for)}
APPS = {
    "VLMambaForConditionalGeneration": ("AutoModelForImageTextToText, AutoProcessor", _VQA, "image-text-to-text"),
    "MambaVisionForImageClassification": ("pipeline", _CLASSIFY, "image-classification"),
    "CoupledMambaForSequenceClassification": (
        "AutoFeatureExtractor, AutoModelForSequenceClassification\nimport numpy as np",
        _SENTIMENT,
        "sentiment",
    ),
}


def app_source(architecture: str, model_id: str, title: str, examples: list[list[str]] = ()) -> str:
    """The text of `app.py` for a model of class `architecture` loaded from `model_id`."""
    imports, body, _ = APPS[architecture]
    source = _HEADER + "\n" + body + _LAUNCH
    if imports.endswith("as np"):  # numpy sits with the other third-party imports, sorted
        source = source.replace("import gradio as gr\n", "import gradio as gr\nimport numpy as np\n")
        imports = imports.split("\n")[0]
    for key, value in (("__IMPORTS__", imports), ("__MODEL_ID__", model_id), ("__TITLE__", title),
                       ("__VERSION__", __version__), ("__EXAMPLES__", _listed(examples))):  # fmt: skip
        source = source.replace(key, value)
    return source


def _listed(examples) -> str:
    """The examples as a Python list, one per line."""
    return "[\n" + "".join(f"    {list(example)!r},\n" for example in examples) + "]" if examples else "[]"


def architecture_of(folder: str | os.PathLike, standalone: bool = True) -> str:
    """The model class config.json names, checked to be one a Space app serves. `standalone`: the folder must load
    without this package (its remote-code bundle complete); `serve` runs the app where the package is imported.

    Raises:
        HubError: not a saved folder, or a model class without an app (`APPS`).
    """
    folder = check_folder(folder) if standalone else Path(folder)
    if not (folder / "config.json").is_file():
        raise HubError(f"{folder}: no config.json (not a folder written by save_pretrained)")
    architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
    served = [name for name in architectures if name in APPS]
    if not served:
        raise HubError(f"{folder}: no Space app for {', '.join(architectures) or 'a model without architectures'} "
                       f"(apps exist for {', '.join(APPS)})")  # fmt: skip
    return served[0]


def _write_examples(folder: Path, examples) -> list[list[str]]:
    """[(PIL image, question)] saved as `folder/examples/N.png`: [[image file relative to the app, question]]."""
    rows = []
    for index, (image, question) in enumerate(examples):
        (folder / "examples").mkdir(exist_ok=True)
        image.convert("RGB").save(folder / f"examples/{index}.png")
        rows.append([f"examples/{index}.png", question])
    return rows


def _space_card(title: str, model_id: str, pipeline: str, sdk_version: str | None) -> str:
    from huggingface_hub import SpaceCardData

    data = SpaceCardData(title=title, sdk="gradio", sdk_version=sdk_version, app_file="app.py",
                         models=[model_id] if as_hub_id(model_id) else None, license="apache-2.0",
                         tags=["mamba_multimodal", pipeline])  # fmt: skip
    data.emoji, data.pinned = "🐍", False
    model = f"[{model_id}](https://huggingface.co/{model_id})" if as_hub_id(model_id) else f"`{model_id}`"
    about = f"A demo of {model} ({pipeline}), written by `mamba-multimodal space`."
    return f"---\n{data.to_yaml()}\n---\n\n# {title}\n\n{about}\n"


def write_space(
    folder: str | os.PathLike, output: str | os.PathLike, model_id: str | None = None, examples=(), standalone=True
) -> Path:
    """Writes the Space of the saved `folder` into `output` (atomically): app.py, requirements.txt, README.md and
    examples/*.png. `model_id`: the Hub id the app loads (default: the folder itself, for `serve`); `examples`:
    [(PIL image, question)] the VLM-Mamba app offers (easy-VQA's: `training.data.easy_vqa.example_questions`);
    `standalone`: as `architecture_of`.

    Raises:
        HubError: not a saved folder, a model class without an app, or an invalid `model_id`.
    """
    architecture = architecture_of(folder, standalone)
    if model_id is not None:
        check_repo_id(model_id)
    model_id = model_id or str(Path(folder).resolve())
    title = Path(model_id).name
    with staged_into(output) as staging:
        examples = _write_examples(staging, examples) if architecture == "VLMambaForConditionalGeneration" else []
        (staging / "app.py").write_text(app_source(architecture, model_id, title, examples))
        (staging / "requirements.txt").write_text(requirements())
        (staging / "README.md").write_text(_space_card(title, model_id, APPS[architecture][2], _gradio_version()))
    return Path(output)


def requirements() -> str:
    """requirements.txt: `SPACE_REQUIREMENTS` with this package's own ranges (transformers capped as it is tested)."""
    ours = {re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0].lower(): line for line in
            importlib.metadata.requires("mamba-multimodal") or [] if "extra ==" not in line}  # fmt: skip
    return "".join(ours.get(name, name).split(";")[0].strip() + "\n" for name in SPACE_REQUIREMENTS)


def _gradio_version() -> str | None:
    """The installed gradio's version (the one `serve` ran the app with), or None without gradio."""
    try:
        return importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        return None


def serve(folder: str | os.PathLike, port: int = 7860, examples=()) -> None:
    """Runs the folder's Space app (the `app.py` `write_space` writes, in a temporary folder, with MODEL_ID the
    folder) on http://127.0.0.1:`port` until interrupted. The package is imported, so a folder without its
    remote-code bundle (the shipped demo base) loads too."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as temporary:
        space = write_space(folder, Path(temporary) / "space", examples=examples, standalone=False)
        os.environ.update({MODEL_ID_VARIABLE: str(Path(folder).resolve()), "GRADIO_SERVER_NAME": "127.0.0.1",
                           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"})  # fmt: skip
        os.chdir(space)  # the examples' paths are relative to the app
        try:
            runpy.run_path(str(space / "app.py"), run_name="__main__")
        finally:
            os.chdir(here)


def push_space(
    folder: str | os.PathLike, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
    examples=(),
):  # fmt: skip
    """Creates (if missing) the Gradio Space `repo_id` and uploads the Space of `folder` loading the model `repo_id`
    from the Hub, in one commit (`HfApi.create_repo(repo_type="space", space_sdk="gradio")`, `upload_folder`).

    Returns:
        huggingface_hub's `CommitInfo`.

    Raises:
        HubError: as `write_space`.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    with tempfile.TemporaryDirectory() as temporary:
        space = write_space(folder, Path(temporary) / "space", model_id=repo_id, examples=examples)
        repo_id = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, token=token,
                                  exist_ok=True).repo_id  # fmt: skip
        return api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=space, token=token,
                                 commit_message=f"Space for {repo_id}")  # fmt: skip


__all__ = ["APPS", "app_source", "architecture_of", "push_space", "serve", "write_space"]
