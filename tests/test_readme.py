"""Every ```python block of README.md runs as written, so the README cannot drift from the code.

The blocks of one `## ` section run in order in one fresh Python process (they build on each other), in a temporary
working folder that holds the files the README names (`cat.jpg`, `image.png`, `MOSEI/`, `data/coco`, `data/vqa`).
Hub ids are answered by the stand-in Hub (`tests/hub_server.py`, here also serving downloads) through `HF_ENDPOINT`:
each id the README loads is a tiny model of the same family, and a pushed repository can be loaded back. No network.

A block preceded by `<!-- readme-test: skip (REASON) -->` is not run; the test reports each skipped block with its
reason, so the few that cannot run on a CPU without the network stay visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_server import StandInHub

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARKER = re.compile(r"<!-- readme-test: skip \((?P<reason>[^)]+)\) -->")
TOKEN = "hf_test"


# --------------------------------------------------------------------------------------------- the blocks
@dataclass
class Block:
    section: str
    line: int  # of the opening ``` in README.md, 1-based
    code: str
    skip_reason: str | None


def readme_python_blocks(text: str) -> list[Block]:
    """Every ```python block with its `## ` section and the skip reason of a marker on the line before it."""
    blocks, section, lines, index = [], "(top)", text.splitlines(), 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
            if line.strip() == "```python":
                previous = lines[index - 1] if index else ""
                marker = SKIP_MARKER.search(previous)
                code = "\n".join(lines[index + 1 : end]) + "\n"
                blocks.append(Block(section, index + 1, code, marker and marker["reason"]))
            index = end
        index += 1
    return blocks


BLOCKS = readme_python_blocks(README.read_text())
SECTIONS = list(dict.fromkeys(block.section for block in BLOCKS))


def test_the_readme_has_python_blocks_and_few_skips():
    """The extraction finds the README's blocks (a change of fence style would otherwise test nothing)."""
    assert len(BLOCKS) >= 10
    assert "Mamba language model" in SECTIONS and "Share" in SECTIONS
    skipped = [block for block in BLOCKS if block.skip_reason]
    assert len(skipped) <= 2, [f"README.md:{block.line} ({block.skip_reason})" for block in skipped]


# ---------------------------------------------------------------------------------- the stand-in Hub, serving
class ServingHub(StandInHub):
    """StandInHub that also serves files: the repositories put with `add_folder` and those pushed to it.

    It answers what `hf_hub_download` (and so transformers' `from_pretrained`) asks: HEAD / GET
    `/{repo}/resolve/{revision}/{path}` with the commit and etag headers; a missing file is huggingface_hub's
    EntryNotFound (transformers then tries its next candidate file), a missing repository RepoNotFound.
    """

    def __init__(self, token: str = TOKEN):
        super().__init__(token)
        self.files: dict[str, dict[str, bytes]] = {}

    def add_folder(self, repo_id: str, folder: Path) -> None:
        self.files[repo_id] = {
            path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
        }

    def _commit(self, repo_id, revision, body):
        answer = super()._commit(repo_id, revision, body)
        self.files.setdefault(repo_id, {}).update(self.commits[-1]["files"])
        return answer

    def _route(self, method, path, headers, body):
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path.split("?")[0])
        if method in ("GET", "HEAD") and resolve:
            self.requests.append((method, path))
            return self._resolve(*resolve.groups())
        return super()._route(method, path, headers, body)

    def _resolve(self, repo_id, revision, filename):
        if repo_id not in self.files:
            return 404, {"error": "repository not found"}, {"X-Error-Code": "RepoNotFound"}
        if filename not in self.files[repo_id]:
            return 404, {"error": "entry not found"}, {"X-Error-Code": "EntryNotFound"}
        data = self.files[repo_id][filename]
        commit = hashlib.sha1(repo_id.encode()).hexdigest()  # one revision per repository
        return 200, data, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}


def tiny_mamba_lm(folder: Path) -> Path:
    """Stands in for state-spaces/mamba-130m-hf: transformers' MambaConfig, its tokenizer padding on the right."""
    from transformers import MambaConfig

    from mamba_multimodal import MambaForCausalLM
    from mamba_multimodal.processing.processing_vlm_mamba import bundled_tokenizer

    tokenizer = bundled_tokenizer()
    tokenizer.padding_side = "right"  # as GPT-NeoX's tokenizer of the real repository
    config = MambaConfig(vocab_size=len(tokenizer), hidden_size=16, state_size=4, num_hidden_layers=2,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    MambaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_nvidia_mambavision(folder: Path) -> Path:
    """Stands in for nvidia/MambaVision-T-1K: 1000 classes, preprocessing fields in config.json, no processor file."""
    from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification

    config = MambaVisionConfig.from_preset("mambavision-tiny-test", num_labels=1000)
    MambaVisionForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").unlink(missing_ok=True)
    fields = json.loads((folder / "config.json").read_text())
    fields.update(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], crop_pct=0.875, crop_mode="center")
    (folder / "config.json").write_text(json.dumps(fields))
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    with ServingHub() as server:
        server.add_folder("state-spaces/mamba-130m-hf", tiny_mamba_lm(root / "mamba"))
        server.add_folder("nvidia/MambaVision-T-1K", tiny_nvidia_mambavision(root / "mambavision"))
        yield server


@pytest.fixture(scope="module")
def readme_files(tmp_path_factory) -> Path:
    """The files the README's blocks open, in the official layouts, small."""
    import PIL.Image

    sys.path.insert(0, str(ROOT / "tests" / "training"))
    from fixtures_mmsa import write_mmsa_pickle
    from fixtures_vlm import write_coco_captions, write_karpathy, write_vqa

    files = tmp_path_factory.mktemp("readme_files")
    PIL.Image.new("RGB", (64, 48), (200, 120, 40)).save(files / "cat.jpg")
    PIL.Image.new("RGB", (64, 64), (30, 60, 220)).save(files / "image.png")
    sizes = {"train": 32, "valid": 16, "test": 256}  # the metrics block scores 256 test clips
    write_mmsa_pickle(files / "MOSEI" / "Processed" / "aligned_50.pkl", "mosei", sizes=sizes)
    sizes = {"train": 4, "valid": 4, "test": 4}  # only loaded
    write_mmsa_pickle(files / "MOSEI" / "Processed" / "unaligned_50.pkl", "mosei", aligned=False, sizes=sizes)
    coco = files / "data" / "coco"
    write_coco_captions(coco, "train", 2014, [9, 25])
    write_coco_captions(coco, "val", 2014, [42, 73, 74, 133])
    write_karpathy(coco / "dataset_coco.json", coco)
    (files / "data" / "vqa").mkdir()
    write_vqa(files / "data" / "vqa", "val2014")
    return files


# ------------------------------------------------------------------------------------------------ the test
# What a section's blocks must have done, beyond running: expressions evaluated in its namespace afterwards.
CHECKS = {
    "Mamba language model": {  # generate() continues each row from its last position
        "the batch is padded on the left": 'bool(inputs["attention_mask"][:, -1].all())',
    },
    "VLM-Mamba": {"Trainer trained on VLMambaDataCollator's batches": "trainer.state.global_step == 2"},
    "Coupled Mamba": {"train_sentiment scored the test split": '"test_MAE" in test_metrics'},
}

# Runs in one fresh process (the imports are paid once): each section in its own namespace and working folder, its
# blocks in order, each compiled at its README line so that a traceback points into README.md. A failing block ends
# its section; the others go on.
RUNNER = """
import json, os, sys, time, traceback
plan = json.loads(open(sys.argv[1]).read())
results = {}
for section in plan["sections"]:
    os.chdir(section["folder"])
    namespace, ran, error = {"__name__": "__main__"}, [], None
    print(f"[readme] ## {section['name']}", flush=True)
    for line, code in section["blocks"]:
        start = time.perf_counter()
        try:
            exec(compile("\\n" * line + code, plan["readme"], "exec"), namespace)
        except BaseException:
            error = traceback.format_exc()
            print(error, flush=True)
            break
        ran.append(line)
        print(f"[readme] README.md:{line} ran in {time.perf_counter() - start:.1f} s", flush=True)
    checks = {label: error is None and eval(check, namespace) is True for label, check in section["checks"].items()}
    results[section["name"]] = {"ran": ran, "error": error, "checks": checks}
    with open(plan["results"], "w") as file:
        json.dump(results, file)
"""


@pytest.fixture(scope="module")
def readme_run(hub, readme_files, tmp_path_factory) -> dict:
    """{section: {"ran": [README lines], "error": traceback or None}, "output": the process's output}."""
    work = tmp_path_factory.mktemp("readme_run")
    sections = []
    for number, section in enumerate(SECTIONS):
        folder = work / f"section{number}"
        folder.mkdir()
        for entry in readme_files.iterdir():
            (folder / entry.name).symlink_to(entry)
        blocks = [(block.line, block.code) for block in BLOCKS if block.section == section and not block.skip_reason]
        checks = CHECKS.get(section, {})
        sections.append({"name": section, "folder": str(folder), "blocks": blocks, "checks": checks})
    plan = {"readme": str(README), "results": str(work / "results.json"), "sections": sections}
    (work / "plan.json").write_text(json.dumps(plan))
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", "HF_HOME": str(work / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
    }  # fmt: skip
    process = subprocess.run(
        [sys.executable, "-c", RUNNER, str(work / "plan.json")],
        cwd=work, env=environment, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    results_file = work / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return results | {"output": process.stdout[-6000:] + process.stderr[-6000:]}


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_section_runs_as_written(section, readme_run):
    blocks = [block for block in BLOCKS if block.section == section]
    runnable = [block.line for block in blocks if not block.skip_reason]
    assert section in readme_run, f"the run stopped before {section!r}:\n{readme_run['output']}"
    result = readme_run[section]
    assert result["error"] is None, f"{section}:\n{result['error']}"
    assert result["ran"] == runnable
    assert result["checks"] == dict.fromkeys(CHECKS.get(section, {}), True)
    for block in blocks:
        if block.skip_reason:
            print(f"README.md:{block.line} ({section}) not run: {block.skip_reason}")


def test_the_hub_ids_were_served_by_the_stand_in(readme_run, hub):
    """The models came from the stand-in Hub, and the pushed one went there as one commit and came back from it."""
    assert [commit["repo_id"] for commit in hub.commits] == ["me/my-vlm"]
    assert "model.safetensors" in hub.commits[0]["files"]
    for repo_id in ("state-spaces/mamba-130m-hf", "nvidia/MambaVision-T-1K", "me/my-vlm"):
        weights = re.compile(rf"/{repo_id}/resolve/[^/]+/model\.safetensors")
        assert any(method == "GET" and weights.fullmatch(path) for method, path in hub.requests), repo_id
