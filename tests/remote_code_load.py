"""Loads saved folders as remote code where `mamba_multimodal` cannot be imported, and writes what they compute.

    python tests/remote_code_load.py SPEC.json OUTPUT_DIR

SPEC lists folders and what to run on each: a model through an Auto class (on saved inputs, and generate() where
asked), a processor through an Auto class (on an image, text or features rebuilt from the spec), a pipeline. An image
is a file ("image_path") or a patterned image of a size ("image_size"). Every
load passes `trust_remote_code=True`; an import finder refuses `mamba_multimodal` before anything else runs. The
script imports nothing from the package or from the tests (they import the package).
"""

import importlib.abc
import json
import sys
from pathlib import Path


class RefusePackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mamba_multimodal", "mamba_multimodal_cli"):
            raise ModuleNotFoundError(f"No module named {name!r} (refused: this process has no mamba_multimodal)")


sys.meta_path.insert(0, RefusePackage())

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from transformers_helpers import auto_processor_class, tensors_of  # noqa: E402  (torch and transformers only)


def patterned_image(size: int) -> Image.Image:
    """The same deterministic image as tests/test_hub.py draws."""
    pixels = np.arange(size * size * 3, dtype=np.int64).reshape(size, size, 3) * 37 % 256
    return Image.fromarray(pixels.astype(np.uint8))


def case_image(case: dict) -> Image.Image:
    """The case's image file ("image_path", RGB) or the patterned image of its size ("image_size")."""
    if "image_path" in case:
        with Image.open(case["image_path"]) as image:
            return image.convert("RGB")
    return patterned_image(case["image_size"])


def model_class(auto: str, folder: str):
    """The Auto class, or for AutoBackbone the bundle's class itself: transformers 5.24's
    `AutoBackbone.from_pretrained` asks the Hub whether a local path is a repo id and fails on any local folder."""
    if auto != "AutoBackbone":
        return getattr(transformers, auto)
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    reference = json.loads((Path(folder) / "config.json").read_text())["auto_map"][auto]
    return get_class_from_dynamic_module(reference, folder)


def run_model(case: dict, output: Path) -> dict:
    cls = model_class(case["auto"], case["folder"])
    model = cls.from_pretrained(case["folder"], trust_remote_code=True).eval()
    inputs = load_file(case["inputs"])
    with torch.no_grad():
        results = {f"output.{i}": t.contiguous() for i, t in enumerate(tensors_of(model(**inputs)))}
        if case.get("generate"):
            results["generated"] = model.generate(**inputs, **case["generate"])
    save_file(results, output / f"{case['name']}.safetensors")
    kernel = sys.modules.get(type(model).__module__.rsplit(".", 1)[0] + ".ssm_cpu")
    return {"module": type(model).__module__, "cpu_kernel": kernel is not None and kernel.load() is not None}


def run_processor(case: dict, output: Path) -> dict:
    processor = auto_processor_class(case["auto"]).from_pretrained(case["folder"], trust_remote_code=True)
    if case["auto"] == "AutoFeatureExtractor":
        features = {name: np.asarray(value, dtype=np.float32) for name, value in case["features"].items()}
        result = processor(features)
    elif case["auto"] == "AutoImageProcessor":
        result = processor(case_image(case), return_tensors="pt")
    else:
        result = processor(images=case_image(case), text=case["text"], return_tensors="pt")
        chat = processor.apply_chat_template(case["chat"], add_generation_prompt=True)
        (output / f"{case['name']}.json").write_text(json.dumps({"chat_prompt": chat}))
    save_file({key: value.contiguous() for key, value in result.items()}, output / f"{case['name']}.safetensors")
    return {"module": type(processor).__module__}


def run_pipeline(case: dict, output: Path) -> dict:
    pipe = transformers.pipeline(case["task"], model=case["folder"], trust_remote_code=True)
    image = case_image(case)
    if case["task"] == "image-classification":
        result = pipe(image, top_k=3)
    else:
        chat = [{"role": "user", "content": [{"type": "image", "image": image}, *case["chat"]]}]
        result = pipe(text=chat, max_new_tokens=case["max_new_tokens"], return_full_text=False)
        result = [{"generated_text": item["generated_text"]} for item in result]
    return {"result": result}


RUNNERS = {"model": run_model, "processor": run_processor, "pipeline": run_pipeline}


def main(spec_path: str, output_dir: str) -> None:
    output = Path(output_dir)
    report = {case["name"]: RUNNERS[case["kind"]](case, output) for case in json.loads(Path(spec_path).read_text())}
    report["imported package modules"] = sorted(name for name in sys.modules if name.startswith("mamba_multimodal"))
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:])
