"""`mamba-multimodal`: a --help without torch, the task table, one-line mistakes, and a tiny end-to-end run per task."""

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import safetensors.torch
import torch
from cli_run import run
from fixtures_mmsa import write_mmsa_pickle
from test_sentiment import predict
from transformers import TrainerCallback

import mamba_multimodal
import mamba_multimodal_cli
from mamba_multimodal.configuration.configuration_mambavision import MambaVisionConfig
from mamba_multimodal.processing.feature_processing_coupled_mamba import CoupledMambaFeatureProcessor
from mamba_multimodal.registry import FAMILIES
from mamba_multimodal.training import cli, flow, load_mmsa, sentiment_metrics
from mamba_multimodal.training.sentiment import build_sentiment_model
from mamba_multimodal.training.tasks import TASKS

TINY_RUN = ["--model", "tiny", "--max-steps", "2", "--max-train-samples", "8", "--max-eval-samples", "4",
            "--per-device-train-batch-size", "4", "--per-device-eval-batch-size", "4"]  # fmt: skip


def test_help_imports_the_standard_library_only():
    """What makes --help answer at once (0.05 s, where `import torch` alone takes seconds): the launcher and the task
    table it reads import nothing outside the standard library, not even the package's __init__."""
    probe = (
        "import sys; before = set(sys.modules); import mamba_multimodal_cli as cli\n"
        "try: cli.main(['--help'])\nexcept SystemExit: pass\n"
        "print('IMPORTED', *sorted({name.split('.')[0] for name in set(sys.modules) - before}))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    imported = set(output.rsplit("IMPORTED", 1)[1].split())
    launcher = {"mamba_multimodal_cli", "_mamba_multimodal_task_table", "_mamba_multimodal_version"}  # run from files
    assert launcher <= imported and not imported - launcher - sys.stdlib_module_names, imported
    assert "image-text-classification" in output


def test_the_launcher_lists_the_task_table_and_each_task_names_a_model_of_its_family():
    assert {name: task.about for name, task in TASKS.items()} == mamba_multimodal_cli.TASKS
    for task in TASKS.values():
        model_class = getattr(mamba_multimodal, task.model_class)
        assert model_class.config_class.model_type == FAMILIES[task.family].model_type, task.name
        assert task.load("model_class") is model_class and callable(task.load("builder"))
        assert callable(task.load("scorer")) and "cpu" in task.recipes


def test_a_tasks_help_shows_its_recipes_and_data_from_the_table(capsys):
    code, out, _ = run(["train", "vqa", "--help"], capsys)
    assert code == 0 and TASKS["vqa"].recipes["paper"].note[:60] in " ".join(out.split())
    assert TASKS["vqa"].data in " ".join(out.split()) and "image-classification" not in out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "vqq"], "TASK"),
        (["train"], "TASK"),
        (["train", "vqa", "--model", "./no/such/folder"], "--model"),
        (["train", "vqa", "--dataset", "./no/such/data"], "--dataset"),
        (["train", "vqa", "--model", "tiny", "--config-overrides", "hiden_size=3"], "hidden_size"),
        (["train", "image-classification", "--model", "tiny", "--config-overrides", "depths=[1,2]"], "depths"),
        (["train", "vqa", "--model", "nobody/no-such-model-here"], "--model"),
        (["train", "image-classification", "--dataset", "nobody/no-such-data"], "--dataset"),
        (["train", "vqa", "--no-such-option"], "--no-such-option"),
        (["train", "sentiment"], "--dataset"),
        (["evaluate", "vqa"], "--model"),
        (["evaluate", "sentiment", "--dataset", "./no/such.pkl"], "--model"),
        (["train", "image-text-classification", "--recipe", "paper"], "recipes cpu"),
        (["train", "image-classification", "--recipe", "gpu"], "--recipe"),
        (["evaluate", "vqa", "--model", "./no/such/folder", "--lora"], "--lora"),
        (["evaluate", "vqa", "--model", "./no/such/folder", "--freeze", "vision_tower"], "--freeze"),
        (["train", "vqa", "--freeze", " , "], "--freeze"),
        (["train", "vqa", *TINY_RUN, "--freeze", "vision_towr"], "'vision_towr'"),
        (["train", "vqa", *TINY_RUN, "--cache-vision-features"], "--freeze vision_tower"),
        (["train", "image-classification", *TINY_RUN, "--cache-vision-features"], "no vision tower"),
        (["train", "sentiment", "--dataset", "x.pkl", "--sentiment-mode", "ranking"], "--sentiment-mode"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_a_mistake_is_one_line_naming_it_and_exit_code_2(argv, named, capsys):
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("mamba-multimodal: error: ") and named in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "vqa", "--bf16", "true"], "--bf16"),
        (["train", "vqa", "--bf16"], "--bf16"),
        (["evaluate", "vqa", "--model", "./no/such/folder", "--bf16-full-eval", "true"], "--bf16-full-eval"),
    ],
)
def test_bf16_without_a_bf16_gpu_names_the_option_and_asks_for_use_cpu(argv, named, monkeypatch, capsys):
    """TrainingArguments refuses bf16 there unless --use-cpu true, in words that name neither option."""
    monkeypatch.setattr(flow, "_accelerator_has_bf16", lambda: False)  # on a GPU machine too
    code, _, err = run(argv, capsys)
    assert code == 2 and err.strip().splitlines() == [
        f"mamba-multimodal: error: {named}: no GPU here has bf16; on the CPU, bf16 autocast needs --use-cpu true"
    ]
    assert flow.parse("train", ["vqa", "--bf16", "true", "--use-cpu", "true"])[3].bf16
    assert not flow.parse("train", ["vqa", "--bf16", "false"])[3].bf16


@pytest.mark.parametrize("task", ["image-classification", "caption", "vqa", "image-text-classification"])
def test_train_then_evaluate_each_vision_task(task, tmp_path, capsys):
    output = tmp_path / "run"
    code, out, _ = run(["train", task, *TINY_RUN, "--output-dir", str(output)], capsys)
    assert code == 0
    assert "trainable" in out and "torch threads" in out and "| metric" in out and "recipe: cpu: " in out
    for name in ("config.json", "model.safetensors", "training_curves.png", "metrics.json"):
        assert (output / name).is_file(), name
    assert (output / "preprocessor_config.json").is_file() or (output / "processor_config.json").is_file()
    metrics = json.loads((output / "metrics.json").read_text())
    code, out, _ = run(["evaluate", task, "--model", str(output), "--max-eval-samples", "4"], capsys)
    assert code == 0 and all(name in out for name in metrics)


# ------------------------------------------------------------------------------------------------ sentiment
TINY_COUPLED = {"hidden_size": 8, "state_size": 4, "num_hidden_layers": 1, "head_hidden_size": 8}


def table(out: str) -> dict[str, float]:
    """The printed metric table: {metric: value}."""
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return {name.strip(): float(value) for name, value in rows if name.strip() != "metric"}


def test_evaluate_sentiment_prints_mmsa_metrics_of_the_trained_models_predictions(tmp_path, capsys):
    data = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(data, "mosei", aligned=True, sizes={"train": 8, "valid": 6, "test": 7})
    output = tmp_path / "run"
    train = ["train", "sentiment", "--model", "tiny", "--dataset", str(data), "--max-steps", "2",
             "--per-device-train-batch-size", "4", "--output-dir", str(output)]  # fmt: skip
    code, out, _ = run(train, capsys)
    assert code == 0 and "| test_MAE " in out and "recipe: cpu: " in out
    assert (output / "training_curves.png").is_file() and (output / "metrics.json").is_file()
    code, out, _ = run(["evaluate", "sentiment", "--model", str(output), "--dataset", str(data),
                        "--per-device-eval-batch-size", "3"], capsys)  # fmt: skip
    assert code == 0 and "recipe:" not in out  # evaluate trains nothing
    printed = table(out)
    splits = load_mmsa(data)
    for split in ("test", "validation"):
        scores, labels = (values.numpy() for values in predict(output, splits[split]))  # a plain forward, no Trainer
        expected = sentiment_metrics(scores, labels, dataset="mosei")
        assert set(expected) == {"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5",
                                 "Mult_acc_7", "MAE", "Corr"}  # fmt: skip
        for name, value in expected.items():
            assert printed[f"{split}_{name}"] == pytest.approx(value, abs=6e-5), (split, name)  # printed to 4 places
        assert printed[f"{split}_MAE"] == pytest.approx(np.abs(scores - labels).mean(), abs=6e-5)
    # The test numbers are those train sentiment reported for the same model.
    trained = json.loads((output / "metrics.json").read_text())
    assert printed["test_MAE"] == pytest.approx(trained["test_MAE"], abs=6e-5)
    assert not any(name.endswith("_runtime") for name in printed)


def test_evaluate_sentiment_reads_the_mode_from_the_head(tmp_path, capsys):
    data = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(data, "mosei", aligned=True, sizes={"train": 4, "valid": 3, "test": 5})
    folder = saved_sentiment_model(tmp_path / "classifier", "classification")
    code, out, _ = run(["evaluate", "sentiment", "--model", str(folder), "--dataset", str(data)], capsys)
    assert code == 0 and "classification" in out
    printed = table(out)
    assert {"test_Acc_3", "test_F1_score_3", "validation_Acc_3"} <= set(printed) and "test_MAE" not in printed


def saved_sentiment_model(folder, mode="regression", sizes=None):
    """An untrained tiny Coupled Mamba and its processor saved as train sentiment saves them."""
    model = build_sentiment_model(sizes or {"text": 768, "audio": 74, "vision": 35}, mode, **TINY_COUPLED)
    model.save_pretrained(folder)
    CoupledMambaFeatureProcessor.from_model_config(model.config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("not a coupled mamba", "model_type 'coupled_mamba'"),
        ("no model there", "--model"),
        ("no such dataset", "--dataset: no such file"),
        ("not a dataset", "--dataset"),
        ("mode not the head's", "--sentiment-mode: classification does not fit"),
        ("other features", "feature sizes"),
    ],
)
def test_evaluate_sentiment_mistakes_are_one_line(case, named, tmp_path, capsys):
    data = tmp_path / "aligned_50.pkl"
    write_mmsa_pickle(data, "mosei", aligned=True, sizes={"train": 4, "valid": 2, "test": 2})
    model = saved_sentiment_model(tmp_path / "model")
    options = {"model": str(model), "dataset": str(data)}
    if case == "not a coupled mamba":
        MambaVisionConfig.from_preset("mambavision-tiny-test").save_pretrained(tmp_path / "vision")
        options["model"] = str(tmp_path / "vision")
    elif case == "no model there":
        options["model"] = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    elif case == "no such dataset":
        options["dataset"] = str(tmp_path / "MOSEI" / "aligned_50.pkl")
    elif case == "not a dataset":
        options["dataset"] = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    elif case == "other features":
        write_mmsa_pickle(tmp_path / "mosi.pkl", "mosi", aligned=True, sizes={"train": 2, "valid": 2, "test": 2})
        options["dataset"] = str(tmp_path / "mosi.pkl")
    extra = ["--sentiment-mode", "classification"] if case == "mode not the head's" else []
    argv = ["evaluate", "sentiment", "--model", options["model"], "--dataset", options["dataset"], *extra]
    capsys.readouterr()  # the fixtures' own progress bars
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("mamba-multimodal: error: ") and named in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------ recipes
def training_arguments(argv: list[str]):
    return flow.parse("train", argv)[3]


def test_image_classification_paper_recipe_is_mambavisions(tmp_path):
    """shared/reference/mambavision.md (configs/*.yaml of T / T2 / S): lr 5e-3, batch 128 per GPU, 310 epochs, cosine,
    warmup 20 epochs, weight decay 0.05, gradient clipping 5 (norm), label smoothing 0.1; AdamW stands in for LAMB."""
    args = training_arguments(["image-classification", "--recipe", "paper", "--output-dir", str(tmp_path)])
    assert (args.learning_rate, args.per_device_train_batch_size, args.num_train_epochs) == (5e-3, 128, 310)
    assert args.lr_scheduler_type == "cosine" and args.warmup_steps == pytest.approx(20 / 310)
    assert args.get_warmup_steps(310 * 12) == 20 * 12  # 12 steps an epoch: the first 20 epochs warm up
    assert (args.weight_decay, args.max_grad_norm, args.label_smoothing_factor) == (0.05, 5.0, 0.1)
    assert args.optim == "adamw_torch"
    given = training_arguments(["image-classification", "--recipe", "paper", "--learning-rate", "1e-3"])
    assert given.learning_rate == 1e-3 and given.num_train_epochs == 310  # an explicit option wins


@pytest.mark.parametrize("task", ["caption", "vqa"])
def test_caption_and_vqa_paper_recipe_is_cobras_with_its_global_batch_split(task, tmp_path, capsys):
    """shared/reference/vlm_coco_vqa.md A2: 2 epochs, global batch 128, lr 2e-5, wd 0.1, warmup ratio 0.03, cosine,
    AdamW."""
    args = training_arguments([task, "--recipe", "paper", "--output-dir", str(tmp_path)])
    assert (args.num_train_epochs, args.learning_rate, args.weight_decay) == (2, 2e-5, 0.1)
    assert (args.warmup_steps, args.lr_scheduler_type, args.optim) == (0.03, "cosine", "adamw_torch")
    assert args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps == 128
    accumulated = training_arguments([task, "--recipe", "paper", "--gradient-accumulation-steps", "4"])
    assert accumulated.per_device_train_batch_size == 32
    code, _, err = run(["train", task, "--recipe", "paper", "--gradient-accumulation-steps", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "global batch 128" in err, err


def test_setup_block_names_what_the_command_line_set_over_the_recipe(tmp_path):
    argv = ["vqa", "--learning-rate", "5e-3", "--max-steps", "30", "--eval-strategy", "no"]
    task, _, data_args, args = flow.parse("train", [*argv, "--output-dir", str(tmp_path)])
    assert sorted(flow.set_over_recipe(task, data_args, args)) == ["eval_strategy no", "learning_rate 0.005",
                                                                   "max_steps 30"]  # fmt: skip
    task, _, data_args, args = flow.parse("train", ["vqa", "--output-dir", str(tmp_path)])
    assert flow.set_over_recipe(task, data_args, args) == []


def test_a_paper_recipe_run_names_its_recipe_and_estimates_its_cost(tmp_path, capsys):
    argv = ["train", "image-classification", *TINY_RUN, "--recipe", "paper", "--output-dir", str(tmp_path / "run")]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "recipe: paper: MambaVision's ImageNet recipe" in out and "sized for GPUs" in out
    assert "steps in" in out and "for all 2 steps" in out  # the estimated duration


def test_unaligned_sentiment_is_resampled_to_50_steps_and_evaluates(tmp_path, capsys):
    data = tmp_path / "unaligned_50.pkl"
    write_mmsa_pickle(data, "mosei", aligned=False, sizes={"train": 4, "valid": 2, "test": 3})
    output = tmp_path / "run"
    train = ["train", "sentiment", "--model", "tiny", "--dataset", str(data), "--sentiment-unaligned", "--max-steps",
             "1", "--per-device-train-batch-size", "4", "--output-dir", str(output)]  # fmt: skip
    assert run(train, capsys)[0] == 0
    assert json.loads((output / "preprocessor_config.json").read_text())["sequence_length"] == 50
    evaluate = ["evaluate", "sentiment", "--model", str(output), "--dataset", str(data), "--sentiment-unaligned"]
    code, out, _ = run(evaluate, capsys)
    assert code == 0 and "test_MAE" in table(out)
    code, _, err = run(evaluate[:-1], capsys)  # read as aligned, the unaligned file's modalities differ in length
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--dataset" in err, err


def test_a_hub_id_without_network_is_one_line_and_no_request_to_retry(tmp_path):
    """No HF_HUB_OFFLINE, and a Hub host that cannot resolve (RFC 2606's .invalid): huggingface_hub alone retries each
    request for ~30 s and prints 11 lines first (measured). The launcher looks the host up once and switches to
    offline mode: no request follows (no other host lookup, which each connection attempt makes), the cache is
    searched and the mistake is one line."""
    probe = (
        "import os, socket, sys; lookups, lookup = [], socket.getaddrinfo\n"
        "socket.getaddrinfo = lambda host, *args, **kwargs: lookups.append(host) or lookup(host, *args, **kwargs)\n"
        "import mamba_multimodal_cli\n"
        "try: code = mamba_multimodal_cli.main(sys.argv[1:])\nexcept SystemExit as exit: code = exit.code\n"
        "print('LOOKUPS', *lookups, 'OFFLINE', os.environ.get('HF_HUB_OFFLINE')); sys.exit(code)"
    )
    env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE")}
    env.update(HF_ENDPOINT="https://hub.invalid", HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", probe, "train", "vqa", "--model", "nobody/no-such-model-here"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("mamba-multimodal: error: --model: cannot load 'nobody/no-such-model-here'")
    assert result.stdout.rsplit("LOOKUPS", 1)[1].split() == ["hub.invalid", "OFFLINE", "1"], result.stdout


def test_offline_mode_is_switched_on_only_for_a_possible_hub_id_and_an_unreachable_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "align").mkdir(parents=True)
    assert not mamba_multimodal_cli.offline_when_the_hub_is_unreachable(["train", "vqa", "--model", "runs/align"])
    assert "HF_HUB_OFFLINE" not in os.environ  # a local folder: no lookup, nothing changed
    assert mamba_multimodal_cli.offline_when_the_hub_is_unreachable(["train", "vqa", "--model", "owner/name"])
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


# ------------------------------------------------------------------------------------------------ before the first step
def mistake_setup(case: str, tmp_path, monkeypatch) -> list[str]:
    """The command line of each mistake, with what it needs on disk (or missing from the environment)."""
    (tmp_path / "file").write_text("not a folder")
    coupled = str(saved_sentiment_model(tmp_path / "coupled"))
    flat = tmp_path / "flat"
    flat.mkdir()
    for index in range(4):  # images, and no class subfolder
        PIL.Image.fromarray(np.full((8, 8, 3), index * 60, np.uint8)).save(flat / f"{index}.png")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a name alone is looked up only when the Hub can answer
    if case == "captions extra missing":
        monkeypatch.setitem(sys.modules, "pycocoevalcap", None)  # as if not installed: its import fails
    if case == "onnx extra missing":
        monkeypatch.setitem(sys.modules, "onnxscript", None)
    if case == "read-only output folder":
        if os.geteuid() == 0:  # root writes through permission bits: a folder no one can create files in
            return ["train", "image-classification", *TINY_RUN, "--output-dir", "/proc/mamba-multimodal-run"]
        (tmp_path / "read-only").mkdir(mode=0o555)
    output = {"output folder is a file": "file", "output folder under a file": "file/run", "read-only output folder":
              "read-only/run"}.get(case, "out")  # fmt: skip
    tiny_train = [*TINY_RUN, "--output-dir", str(tmp_path / output)]
    return {
        "output folder is a file": ["train", "vqa", *tiny_train],
        "output folder under a file": ["train", "image-classification", *tiny_train],
        "read-only output folder": ["train", "image-classification", *tiny_train],
        "captions extra missing": ["train", "caption", *tiny_train],
        "another family to evaluate": ["evaluate", "vqa", "--model", coupled],
        "another family to train": ["train", "image-text-classification", "--model", coupled],
        "resume without a checkpoint": ["train", "vqa", *tiny_train, "--resume_from_checkpoint", "True"],
        "resume from no checkpoint": ["train", "vqa", *tiny_train, "--resume_from_checkpoint", str(tmp_path / "empty")],
        "unknown name for images": ["train", "image-classification", "--dataset", "no-such-data", *tiny_train],
        "unknown name for vqa": ["train", "vqa", "--dataset", "vqa-v2", *tiny_train],
        "unknown name for sentiment": ["train", "sentiment", "--dataset", "MOSEI", *tiny_train],
        "image folder without classes": ["train", "image-classification", "--dataset", str(flat), *tiny_train],
        "export of another family": ["export-onnx", coupled, str(tmp_path / "model.onnx")],
        "export of a missing folder": ["export-onnx", "no-such-folder", str(tmp_path / "model.onnx")],
        "export of a missing path": ["export-onnx", "./no/such/folder", str(tmp_path / "model.onnx")],
        "onnx extra missing": ["export-onnx", coupled, str(tmp_path / "model.onnx")],
        "push to an invalid repo id": ["push", coupled, "not a/repo id"],
    }[case]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("output folder is a file", "--output-dir: "),
        ("output folder under a file", "is a file, not a folder"),
        ("read-only output folder", "--output-dir: cannot write into"),
        ("captions extra missing", "pip install 'mamba-multimodal[captions]'"),
        ("another family to evaluate", "--model: "),
        ("another family to train", "needs model_type 'vlm_mamba'"),
        ("resume without a checkpoint", "--resume_from_checkpoint: no checkpoint-N folder"),
        ("resume from no checkpoint", "--resume_from_checkpoint: "),
        ("unknown name for images", "--dataset: 'no-such-data' is no local file or folder"),
        ("unknown name for vqa", "--dataset: 'vqa-v2' is no local file or folder"),
        ("unknown name for sentiment", "--dataset: 'MOSEI' is no local file or folder"),
        ("image folder without classes", "has no class subfolders"),
        ("export of another family", "MODEL: "),
        ("export of a missing folder", "MODEL: no such folder"),
        ("export of a missing path", "MODEL: no such file or folder"),
        ("onnx extra missing", "pip install 'mamba-multimodal[onnx]'"),
        ("push to an invalid repo id", "not a valid Hub repo id"),
    ],
)
def test_a_mistake_found_before_the_first_step_is_one_line(case, named, tmp_path, monkeypatch, capsys):
    """Each one failed after training (output folder, missing extra), with a traceback (another family: a missing
    config field; a missing export path: a Hub error) or after ~30 s of Hub retries (a name alone)."""
    argv = mistake_setup(case, tmp_path, monkeypatch)
    capsys.readouterr()
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("mamba-multimodal: error: ") and named in lines[0], lines[0]
    assert not (tmp_path / "out").exists()  # nothing written: no step ran


def test_the_family_mistake_names_the_folder_and_both_model_types(tmp_path, capsys):
    coupled = str(saved_sentiment_model(tmp_path / "coupled"))
    code, _, err = run(["evaluate", "vqa", "--model", coupled], capsys)
    assert code == 2 and f"--model: {coupled} holds a 'coupled_mamba' model; vqa needs model_type 'vlm_mamba'" in err


# ------------------------------------------------------------------------------------------------ checkpoints, resume
def test_every_recipe_saves_checkpoints_keeping_the_newest(tmp_path):
    (tmp_path / "x.pkl").touch()
    for task in TASKS.values():
        for recipe in task.recipes:
            argv = [task.name, "--recipe", recipe, "--output-dir", str(tmp_path)]
            needs_data = task.name == "sentiment" or not task.default_dataset  # a file given: no data is read here
            argv += ["--dataset", str(tmp_path / "x.pkl")] if needs_data else []
            args = training_arguments(argv)
            assert args.save_strategy != "no" and 1 <= args.save_total_limit <= 2, (task.name, recipe)


def run_interrupted(argv, capsys) -> tuple[int, str, str]:
    """`run`, failing the test (not ending the session, as pytest does on KeyboardInterrupt) if Ctrl-C escapes."""
    try:
        return run(argv, capsys)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command line")


class StepsRun(TrainerCallback):
    """Counts the optimizer steps this process ran; raises KeyboardInterrupt (Ctrl-C) once it ends step `stop_at`."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at, self.steps = stop_at, []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)
        if state.global_step == self.stop_at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_an_interrupted_run_resumed_as_printed_ends_with_the_weights_of_an_uninterrupted_one(
    lora, tmp_path, monkeypatch, capsys
):
    """Ctrl-C during step 5 (after checkpoint-3, before checkpoint-6: the work since the checkpoint is lost, as with
    a real Ctrl-C between two saves). Resumed with the printed command, the run restores the weights, optimizer,
    scheduler, RNG states and its place in the epoch from checkpoint-3 and runs steps 4-6 only. The weights then equal
    the uninterrupted run's bit for bit: the same operations on the same values in the same order (CPU, one process).
    A restart from step 0 would equal them too, so the steps run after the resume are counted. With --lora the
    checkpoint holds the adapters (and their optimizer state) on the frozen base."""
    options = ["image-classification", *TINY_RUN[:2], "--max-steps", "6", "--save-steps", "3", "--max-train-samples",
               "16", "--per-device-train-batch-size", "4", "--max-eval-samples", "4",
               "--disable-tqdm", "True", *(["--lora"] if lora else [])]  # fmt: skip
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    code, _, _ = run(["train", *options, "--output-dir", str(whole)], capsys)
    assert code == 0

    stopped = StepsRun(stop_at=5)
    monkeypatch.setattr(cli, "_estimate_callback", lambda: stopped)
    code, _, err = run_interrupted(["train", *options, "--output-dir", str(interrupted)], capsys)
    lines = [line for line in err.splitlines() if line.startswith("mamba-multimodal")]  # not the progress bars
    assert code == 130 and len(lines) == 1 and "Traceback" not in err and stopped.steps == [1, 2, 3, 4, 5], err
    assert lines[0].startswith(f"mamba-multimodal: interrupted; resume from the newest checkpoint in {interrupted}")
    assert sorted(path.name for path in interrupted.iterdir()) == ["checkpoint-3"]  # no final folder, no staging

    resumed = StepsRun()
    monkeypatch.setattr(cli, "_estimate_callback", lambda: resumed)
    command = shlex.split(lines[0].split(" with: ", 1)[1])
    assert command[:2] == ["mamba-multimodal", "train"] and command[-2:] == ["--resume_from_checkpoint", "True"]
    code, _, err = run(command[1:], capsys)
    assert code == 0 and resumed.steps == [4, 5, 6], err[-3000:]
    expected = safetensors.torch.load_file(whole / "model.safetensors")
    weights = safetensors.torch.load_file(interrupted / "model.safetensors")
    assert expected.keys() == weights.keys()
    assert all(torch.equal(expected[name], weights[name]) for name in expected)


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_estimate_callback", lambda: StepsRun(stop_at=1))
    output = tmp_path / "run"
    code, _, err = run_interrupted(["train", "image-classification", *TINY_RUN, "--output-dir", str(output)], capsys)
    lines = [line for line in err.splitlines() if line.startswith("mamba-multimodal")]  # not the progress bars
    assert code == 130 and "Traceback" not in err and not (output / "model.safetensors").exists()
    assert lines == [f"mamba-multimodal: interrupted before the first checkpoint in {output}; nothing was saved"]


def test_train_sentiment_passes_resume_on(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "run_task", lambda command, argv: seen.append(argv) or 0)
    assert cli.main(["train-sentiment", "d.pkl", "out", "--resume-from-checkpoint", "True"]) == 0
    assert seen[0][seen[0].index("--resume_from_checkpoint") + 1] == "True"
