"""Sharing (mamba_multimodal.sharing): every saved folder loads where the package is absent and computes the same.

One subprocess (`remote_code_load.py`, which refuses to import mamba_multimodal) loads every model class of every
sharing family, every processor and the two pipelines from folders written by `save_pretrained`, with
`trust_remote_code=True`; its outputs are compared with the installed package's on the same folders. The rest:
the bundle's files and imports, loading with the package without remote code, model cards, and push through
huggingface_hub's real client against a stand-in Hub on 127.0.0.1.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from huggingface_hub import ModelCard
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import pipeline
from transformers.dynamic_module_utils import get_relative_imports

from mamba_multimodal import hub
from mamba_multimodal.processing.processing_vlm_mamba import vqa_prompt
from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.sharing import bundle
from mamba_multimodal.training.recipes import easy_vqa_vlm, easy_vqa_vlm_config, vlm_and_processor
from mamba_multimodal.training.tasks import TASKS
from test_families import inputs_for
from transformers_helpers import auto_processor_class, load_without_package, tensors_of

SHARING = [family for family in FAMILIES.values() if family.register_with_auto]
MODEL_CASES = [(family, auto, cls) for family in SHARING for auto, cls in family.auto_models.items()]
LABELS = {0: "circle", 1: "square", 2: "triangle"}
# Same weights, same code, same kernel: only the weights' alignment in memory differs (see test_families.py).
TOLERANCE = {"atol": 1e-6, "rtol": 0}
QUESTION = "What shape is in the image?"
GENERATE = {"max_new_tokens": 4, "do_sample": False}


def case_name(family, auto) -> str:
    return f"{family.name}-{auto}"


def config_for(family):
    """The family's tiny config with label names; VLM-Mamba's fits the bundled tokenizer, so its processor is saved."""
    if family.name == "vlm_mamba":
        return easy_vqa_vlm_config("tiny", id2label=LABELS)
    config = family.tiny_config()
    if family.name == "mambavision":
        config.update({"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}})
    return config


def patterned_image(size: int) -> Image.Image:
    """The same deterministic image as remote_code_load.py draws."""
    pixels = np.arange(size * size * 3, dtype=np.int64).reshape(size, size, 3) * 37 % 256
    return Image.fromarray(pixels.astype(np.uint8))


def image_size(config) -> int:
    return getattr(config, "vision_config", config).image_size


def vlm_inputs(processor, config) -> dict:
    """A real prompt through the processor: the image tokens where the model expects them."""
    images, prompts = [patterned_image(image_size(config))] * 2, [vqa_prompt(QUESTION)] * 2
    return dict(processor(images=images, text=prompts, return_tensors="pt"))


def save_case(family, auto, cls, root: Path) -> tuple[dict, dict]:
    """Saves a tiny model of `cls` and its inputs; returns (the remote spec entries, the expected results)."""
    torch.manual_seed(0)
    config = config_for(family)
    model = cls(config).eval()
    folder = root / case_name(family, auto)
    processor = None
    if family.name == "vlm_mamba":
        _, processor = vlm_and_processor(config, cls)
    # The generating model gets a real prompt (image tokens placed by the processor), the others random inputs.
    inputs = vlm_inputs(processor, config) if cls.can_generate() else inputs_for(cls, config)
    model.save_pretrained(folder, processor=processor)
    save_file({key: value.contiguous() for key, value in inputs.items()}, folder / "inputs.safetensors")
    entry = {"name": case_name(family, auto), "kind": "model", "auto": auto, "folder": str(folder),
             "inputs": str(folder / "inputs.safetensors")}  # fmt: skip
    if model.can_generate():
        entry["generate"] = {**GENERATE, "pad_token_id": processor.tokenizer.pad_token_id}
    return entry, {"folder": folder, "inputs": inputs, "model": model}


def processor_entries(root: Path) -> list[dict]:
    """Each sharing family's processor, loaded from the folder its model was saved to."""
    entries = []
    for family in SHARING:
        if family.auto_processor is None:
            continue
        auto = next(iter(family.auto_models))
        config = config_for(family)
        entry = {"name": f"{family.name}-{family.auto_processor}", "kind": "processor", "auto": family.auto_processor,
                 "folder": str(root / case_name(family, auto))}  # fmt: skip
        if family.auto_processor == "AutoFeatureExtractor":
            rng = np.random.default_rng(0)
            entry["features"] = {f"{m}_features": rng.normal(size=(2, 5, size)).tolist()
                                 for m, size in zip(config.modalities, config.input_sizes, strict=True)}  # fmt: skip
        else:
            entry["image_size"] = image_size(config)
            entry["text"] = vqa_prompt(QUESTION)
            chat_image = {"type": "image"}
            entry["chat"] = [{"role": "user", "content": [chat_image, {"type": "text", "text": QUESTION}]}]
        entries.append(entry)
    return entries


def pipeline_entries(root: Path) -> list[dict]:
    vision = root / case_name(FAMILIES["mambavision"], "AutoModelForImageClassification")
    vlm = root / case_name(FAMILIES["vlm_mamba"], "AutoModelForImageTextToText")
    return [
        {"name": "pipeline-image-classification", "kind": "pipeline", "task": "image-classification",
         "folder": str(vision), "image_size": image_size(config_for(FAMILIES["mambavision"]))},
        {"name": "pipeline-image-text-to-text", "kind": "pipeline", "task": "image-text-to-text", "folder": str(vlm),
         "image_size": image_size(config_for(FAMILIES["vlm_mamba"])), "max_new_tokens": GENERATE["max_new_tokens"],
         "chat": [{"type": "text", "text": QUESTION}]},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Every case saved, then loaded once in a process without mamba_multimodal: (spec, expected, remote dir)."""
    root = tmp_path_factory.mktemp("shared")
    spec, expected = [], {}
    for family, auto, cls in MODEL_CASES:
        entry, saved = save_case(family, auto, cls, root)
        spec.append(entry)
        expected[entry["name"]] = saved
    spec += processor_entries(root) + pipeline_entries(root)
    report = load_without_package(spec, root)
    return {entry["name"]: entry for entry in spec}, expected, root / "remote", report


# ---------------------------------------------------------------------------------------- without the package
def test_the_remote_process_never_imported_the_package(shared):
    _, _, _, report = shared
    assert report["imported package modules"] == []


@pytest.mark.parametrize(("family", "auto", "cls"), MODEL_CASES, ids=[case_name(f, a) for f, a, _ in MODEL_CASES])
def test_remote_code_model_computes_what_the_package_computes(shared, family, auto, cls):
    spec, expected, remote, report = shared
    name = case_name(family, auto)
    assert report[name]["module"].startswith("transformers_modules.")  # the bundle's class, not the package's
    assert report[name]["cpu_kernel"], "the bundle built the C++ scan kernel from its ssm_cpu_source.py"
    saved = expected[name]
    # With the package installed: its classes, no trust_remote_code needed (AutoBackbone: see remote_code_load.py).
    auto_class = cls if auto == "AutoBackbone" else getattr(transformers, auto)
    local = auto_class.from_pretrained(saved["folder"]).eval()
    assert type(local) is cls
    got = load_file(remote / f"{name}.safetensors")
    with torch.no_grad():
        outputs = tensors_of(local(**saved["inputs"]))
        assert len(outputs) == len([key for key in got if key.startswith("output.")])
        for index, tensor in enumerate(outputs):
            torch.testing.assert_close(got[f"output.{index}"], tensor, **TOLERANCE)
        if "generate" in spec[name]:
            assert torch.equal(got["generated"], local.generate(**saved["inputs"], **spec[name]["generate"]))


@pytest.mark.parametrize("family", [f for f in SHARING if f.auto_processor], ids=lambda f: f.name)
def test_remote_code_processor_processes_as_the_package_does(shared, family):
    spec, _, remote, report = shared
    name = f"{family.name}-{family.auto_processor}"
    entry = spec[name]
    assert report[name]["module"].startswith("transformers_modules.")
    local = auto_processor_class(family.auto_processor).from_pretrained(entry["folder"])
    assert type(local) is family.processor_class
    if "features" in entry:
        expected = local({key: np.asarray(value, dtype=np.float32) for key, value in entry["features"].items()})
    elif family.auto_processor == "AutoImageProcessor":
        expected = local(patterned_image(entry["image_size"]), return_tensors="pt")
    else:
        expected = local(images=patterned_image(entry["image_size"]), text=entry["text"], return_tensors="pt")
        remote_chat = json.loads((remote / f"{name}.json").read_text())["chat_prompt"]
        assert remote_chat == local.apply_chat_template(entry["chat"], add_generation_prompt=True)
        assert remote_chat == vqa_prompt(QUESTION)  # the chat renders exactly the prompt that training uses
    got = load_file(remote / f"{name}.safetensors")
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], torch.as_tensor(value), atol=0, rtol=0)


def test_remote_code_image_classification_pipeline_keeps_the_label_names(shared):
    spec, _, _, report = shared
    entry = spec["pipeline-image-classification"]
    local = pipeline("image-classification", model=entry["folder"])(patterned_image(entry["image_size"]), top_k=3)
    assert report["pipeline-image-classification"]["result"] == json.loads(json.dumps(local))
    assert {item["label"] for item in local} == set(LABELS.values())


def test_remote_code_image_text_to_text_pipeline_answers_as_generate(shared):
    spec, expected, _, report = shared
    entry = spec["pipeline-image-text-to-text"]
    image = {"type": "image", "image": patterned_image(entry["image_size"])}
    chat = [{"role": "user", "content": [image, *entry["chat"]]}]
    local = pipeline("image-text-to-text", model=entry["folder"])
    answer = local(text=chat, max_new_tokens=entry["max_new_tokens"], return_full_text=False)[0]["generated_text"]
    # transformers' own pipeline, without the package, keeps the space that separates the answer from the prompt.
    remote = report["pipeline-image-text-to-text"]["result"]
    assert len(remote) == 1 and remote[0]["generated_text"].removeprefix(" ") == answer
    saved = expected[case_name(FAMILIES["vlm_mamba"], "AutoModelForImageTextToText")]
    processor = local.processor
    inputs = processor(images=patterned_image(entry["image_size"]), text=vqa_prompt(QUESTION), return_tensors="pt")
    generated = saved["model"].generate(**inputs, **GENERATE, pad_token_id=processor.tokenizer.pad_token_id)
    assert answer == processor.batch_decode(generated, input_ids=inputs["input_ids"])[0]


# ---------------------------------------------------------------------------------------- the bundle
@pytest.mark.parametrize("family", SHARING, ids=lambda f: f.name)
def test_bundle_is_flat_and_imports_only_its_own_files_with_single_dots(family, tmp_path):
    names = hub.write_bundle(tmp_path, family)
    assert {"hub_mixin.py", "ssm.py", "ssm_cpu.py", "ssm_cpu_source.py"} <= set(names)
    for name in names:
        source = (tmp_path / name).read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{name}: {ast.unparse(node)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0:
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not any(m.startswith("mamba_multimodal") for m in modules), f"{name}: {ast.unparse(node)}"
        # What transformers' loader follows (a regex, imports inside functions too) exists in the folder.
        for imported in get_relative_imports(tmp_path / name):
            assert (tmp_path / f"{imported}.py").is_file(), f"{name} imports .{imported}, not in the bundle"


def test_kernel_source_module_holds_the_cpp_source_exactly(tmp_path):
    hub.write_bundle(tmp_path, "mambavision")
    namespace = {}
    exec((tmp_path / "ssm_cpu_source.py").read_text(), namespace)
    package_source = Path(bundle.PACKAGE_ROOT, "modeling", "ssm_cpu.cpp").read_text()
    assert namespace["SOURCE"] == package_source


def test_bundle_refuses_an_absolute_import_of_the_package():
    with pytest.raises(ValueError, match=r"imports mamba_multimodal\.registry absolutely"):
        bundle._rewrite_imports("from mamba_multimodal.registry import FAMILIES\n", "mamba_multimodal.modeling.x")


def test_bundle_rewrites_a_parent_import_and_keeps_the_rest_of_the_line():
    source = "from ..configuration.validation import is_positive_int  # why\nx = 1\n"
    rewritten, needed = bundle._rewrite_imports(source, "mamba_multimodal.modeling.mamba")
    assert rewritten == "from .validation import is_positive_int  # why\nx = 1\n"
    assert needed == {"mamba_multimodal.configuration.validation"}


@pytest.mark.parametrize(("family", "auto", "cls"), MODEL_CASES, ids=[case_name(f, a) for f, a, _ in MODEL_CASES])
def test_saved_folder_has_auto_map_processor_and_card(shared, family, auto, cls):
    _, expected, _, _ = shared
    folder = expected[case_name(family, auto)]["folder"]
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == hub.model_auto_map(family)
    for reference in config["auto_map"].values():
        assert (folder / f"{reference.split('.')[0]}.py").is_file()
    if family.auto_processor:
        processor_file = folder / hub.PROCESSOR_FILES[family.auto_processor]
        assert family.auto_processor in json.loads(processor_file.read_text())["auto_map"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and "custom_code" in card.data.tags
    assert "trust_remote_code=True" in card.text and family.summary in card.text


def test_vlm_without_a_fitting_tokenizer_saves_no_processor_and_says_so(tmp_path, caplog):
    vlm = TASKS["vqa"].load("model_class")(FAMILIES["vlm_mamba"].tiny_config())
    vlm.save_pretrained(tmp_path)  # vocabulary 64: not the bundled tokenizer
    assert not (tmp_path / "processor_config.json").exists()
    assert (tmp_path / "config.json").is_file() and (tmp_path / "modeling_vlm_mamba.py").is_file()


# ---------------------------------------------------------------------------------------- push
PUSHED_FILES_ALWAYS = {"config.json", "model.safetensors", "README.md", "modeling_vlm_mamba.py", "ssm_cpu_source.py"}


def run_with_hub(server, code: str, token: str | None = "hf_test", offline: bool = False):
    """Runs `code` in a Python subprocess whose huggingface_hub talks to the stand-in Hub."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    environment |= {"HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "1" if offline else "0",
                    "HF_HOME": str(Path(server.home)), "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip
    if token is not None:
        environment["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)


@pytest.fixture
def stand_in_hub(tmp_path):
    from hub_server import StandInHub

    with StandInHub(token="hf_test") as server:
        server.home = tmp_path / "hf_home"
        yield server


def cli(*arguments: str) -> str:
    return f"import sys; from mamba_multimodal_cli import main; sys.exit(main({list(arguments)!r}))"


def test_cli_push_uploads_the_whole_folder_in_one_commit(shared, stand_in_hub):
    _, expected, _, _ = shared
    folder = expected[case_name(FAMILIES["vlm_mamba"], "AutoModelForImageTextToText")]["folder"]
    card_before = (folder / "README.md").read_text()
    done = run_with_hub(stand_in_hub, cli("push", str(folder), "tester/vlm-tiny", "--private", "--revision", "dev"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pushed" in done.stdout and "tester/vlm-tiny" in done.stdout
    assert stand_in_hub.repos["tester/vlm-tiny"]["private"] is True
    assert stand_in_hub.branches == [("tester/vlm-tiny", "dev")]
    [commit] = stand_in_hub.commits  # one commit, on the branch, with every file of the folder
    assert commit["revision"] == "dev" and commit["other"] == []
    on_disk = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert set(commit["files"]) == set(on_disk) and set(on_disk) >= PUSHED_FILES_ALWAYS
    assert all(commit["files"][name] == data for name, data in on_disk.items() if name != "README.md")
    card = commit["files"]["README.md"].decode()
    assert 'model_id = "tester/vlm-tiny"' in card and (folder / "README.md").read_text() == card_before


def test_model_push_to_hub_commits_weights_bundle_processor_and_card_at_once(stand_in_hub):
    code = (
        "from mamba_multimodal.training.recipes import easy_vqa_vlm\n"
        "model, processor = easy_vqa_vlm('tiny')\n"
        "print(model.push_to_hub('tester/pushed', processor=processor, commit_message='first').oid)\n"
    )
    done = run_with_hub(stand_in_hub, code)
    assert done.returncode == 0, done.stderr[-3000:]
    [commit] = stand_in_hub.commits
    assert commit["header"]["summary"] == "first"
    assert PUSHED_FILES_ALWAYS | {"processor_config.json", "tokenizer.json", "chat_template.jinja"} <= set(
        commit["files"]
    )
    config = json.loads(commit["files"]["config.json"])
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_vlm_mamba.VLMambaForConditionalGeneration"


@pytest.mark.parametrize(
    ("token", "offline", "message"),
    [
        (None, False, "not logged in to the Hub (run `hf auth login` or set HF_TOKEN)"),
        ("hf_wrong", False, "the Hub refused the token (HTTP 401)"),
        ("hf_test", True, "HF_HUB_OFFLINE is set"),
    ],
    ids=["no-token", "wrong-token", "offline"],
)
def test_cli_push_that_cannot_work_says_why_in_one_line(shared, stand_in_hub, token, offline, message):
    _, expected, _, _ = shared
    folder = expected[case_name(FAMILIES["mambavision"], "AutoModel")]["folder"]
    done = run_with_hub(stand_in_hub, cli("push", str(folder), "tester/x"), token=token, offline=offline)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert stand_in_hub.commits == []


def test_cli_push_of_a_folder_that_is_not_a_saved_model_says_so(tmp_path, stand_in_hub):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mambavision"}))
    done = run_with_hub(stand_in_hub, cli("push", str(tmp_path), "tester/x"))
    assert done.returncode == 2 and "no model weights" in done.stderr and stand_in_hub.requests == []


# ---------------------------------------------------------------------------------------- the command line
def test_cli_training_writes_a_folder_ready_to_share(tmp_path, capsys):
    from mamba_multimodal.training import cli as training_cli

    folder = tmp_path / "digits"
    options = ["--model", "tiny", "--max_steps", "2", "--max-eval-samples", "40", "--output-dir", str(folder)]
    assert training_cli.main(["train", "image-classification", *options]) == 0
    assert f"mamba-multimodal push {folder} USER/NAME" in capsys.readouterr().out
    card = ModelCard.load(folder / "README.md")
    accuracy = json.loads((folder / "metrics.json").read_text())["accuracy"]
    results = {result.metric_name: result for result in card.data.eval_results}
    assert results["accuracy"].metric_value == accuracy and results["accuracy"].dataset_name == "digits (test split)"
    assert card.data.pipeline_tag == "image-classification" and "image-classification" in card.data.tags
    assert "| optimizer steps | 2 |" in card.text and "mamba-multimodal train image-classification" in card.text
    assert card.data.model_name == "digits" and 'model_id = "digits"' in card.text and ".staging" not in card.text
    hub.check_folder(folder)  # bundle complete
    labels = {item["label"] for item in pipeline("image-classification", model=str(folder))(patterned_image(64))}
    assert labels <= set("0123456789")  # the digits' label names, kept in the saved config


def test_cli_push_to_hub_while_offline_stops_before_training(tmp_path, capsys):
    from mamba_multimodal.training import cli as training_cli

    options = ["--model", "tiny", "--push_to_hub", "--output-dir", str(tmp_path / "never")]
    assert training_cli.main(["train", "image-classification", *options]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "mamba-multimodal: error: --push_to_hub: cannot push: HF_HUB_OFFLINE is set (unset it, or save locally and "
        "push later)"
    )
    assert not (tmp_path / "never").exists()


def test_cli_push_to_hub_with_an_invalid_repo_id_stops_before_training(tmp_path, capsys):
    from mamba_multimodal.training import cli as training_cli

    options = ["--model", "tiny", "--push_to_hub", "--hub_model_id", "me/a..b", "--output-dir", str(tmp_path / "never")]
    assert training_cli.main(["train", "image-classification", *options]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(
        "mamba-multimodal: error: --push_to_hub: --hub_model_id: 'me/a..b' is not a valid Hub repo id"
    )
    assert not (tmp_path / "never").exists()


def test_trainer_final_save_writes_the_bundle_processor_and_card(tmp_path):
    from transformers import TrainingArguments

    from mamba_multimodal.training.trainer import MambaTrainer

    family = FAMILIES["mambavision"]
    model = TASKS["image-classification"].load("model_class")(config_for(family))
    rows = [{"pixel_values": torch.randn(3, 32, 32), "labels": i % 3} for i in range(4)]
    arguments = TrainingArguments(tmp_path / "run", max_steps=1, per_device_train_batch_size=4, report_to="none",
                                  use_cpu=True, save_strategy="no")  # fmt: skip
    trainer = MambaTrainer(model=model, args=arguments, train_dataset=rows)
    trainer.train()
    trainer.save_model(tmp_path / "final")
    assert hub.check_folder(tmp_path / "final")
    assert json.loads((tmp_path / "final" / "preprocessor_config.json").read_text())["auto_map"]
    assert ModelCard.load(tmp_path / "final" / "README.md").data.pipeline_tag == "image-classification"


def test_a_card_written_in_a_staging_folder_is_named_after_its_target(tmp_path):
    from mamba_multimodal.file_utils import staged_into

    family = FAMILIES["coupled_mamba"]
    with staged_into(tmp_path / "mosei-run") as staging:
        TASKS["sentiment"].load("model_class")(family.tiny_config()).save_pretrained(staging)
    card = ModelCard.load(tmp_path / "mosei-run" / "README.md")
    assert "\n# mosei-run\n" in card.text
    assert 'model_id = "mosei-run"' in card.text and ".staging" not in card.text


def test_cli_push_to_an_unreachable_hub_says_so_in_one_line(shared, stand_in_hub):
    _, expected, _, _ = shared
    folder = expected[case_name(FAMILIES["mambavision"], "AutoModel")]["folder"]
    # Port 9 (discard): nothing listens there, the connection is refused at once.
    code = f"import os; os.environ['HF_ENDPOINT'] = 'http://127.0.0.1:9'\n{cli('push', str(folder), 'tester/x')}"
    done = run_with_hub(stand_in_hub, code)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot push: the Hub at http://127.0.0.1:9 is unreachable" in done.stderr


def test_let_auto_model_generate_points_automodel_at_the_generating_class(tmp_path):
    """For harnesses that load AutoModel and call generate: opt-in, the remote code's AutoModel is then
    VLMambaForConditionalGeneration (loaded where the package is not imported: tests/test_lmms_eval.py, through
    lmms-eval); a folder without that class raises."""
    model, processor = easy_vqa_vlm("tiny")
    model.save_pretrained(tmp_path / "vlm", processor=processor)
    generator = "modeling_vlm_mamba.VLMambaForConditionalGeneration"
    assert hub.let_auto_model_generate(tmp_path / "vlm") == generator
    auto_map = json.loads((tmp_path / "vlm" / "config.json").read_text())["auto_map"]
    assert auto_map == {**hub.model_auto_map(FAMILIES["vlm_mamba"]), "AutoModel": generator}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(ValueError, match="auto_map has no AutoModelForImageTextToText class"):
        hub.let_auto_model_generate(tmp_path / "other")


def test_cli_push_uploads_the_measured_metrics_the_hub_reads(tmp_path, stand_in_hub):
    model = FAMILIES["mambavision"].auto_models["AutoModelForImageClassification"](config_for(FAMILIES["mambavision"]))
    model.save_pretrained(tmp_path / "run")
    hub.write_model_card(tmp_path / "run", model, metrics={"accuracy": 0.75}, dataset_name="digits (test split)",
                         dataset_split="test", eval_dataset="digits", command="mamba-multimodal train ...")  # fmt: skip
    written = (tmp_path / "run" / ".eval_results" / "digits.yaml").read_bytes()
    done = run_with_hub(stand_in_hub, cli("push", str(tmp_path / "run"), "tester/digits"))
    assert done.returncode == 0, done.stderr[-3000:]
    [commit] = stand_in_hub.commits
    assert commit["files"][".eval_results/digits.yaml"] == written
    assert b"value: 0.75" in written and not any(name.startswith(".eval_results/.") for name in commit["files"])
