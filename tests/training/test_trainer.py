"""MambaTrainer: weight decay skips what it must, a non-finite loss stops training at its step, a seed decides the
run, an interrupted run resumes to the same weights, a crash while saving leaves the previous checkpoint to resume
from, two processes train what one does, and two processes can build the CPU kernel at once.

Tolerances: one process is deterministic on CPU, so seeded runs and resumed runs are compared for exact equality;
2 processes × batch b against 1 × 2b differ by float rounding in DDP's gradient averaging (3e-8 seen with SGD), checked
to 1e-6.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import pytest
import torch
from distributed_train import SEED, sentiment_data
from distributed_train import train as train_script
from launching import free_port, launched
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from mamba_multimodal.modeling.mamba import MambaRMSNorm
from mamba_multimodal.registry import FAMILIES, MAMBA_PROJECTIONS
from mamba_multimodal.training import MambaTrainer, no_decay_parameter_names
from mamba_multimodal.training.tasks import TASKS

SCRIPT = Path(__file__).with_name("distributed_train.py")
PROCESS_RNG_STATES = {"rng_state_0.pth", "rng_state_1.pth"}
CHECKPOINT_FILES = {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}


def tiny_model(family: str = "coupled_mamba") -> nn.Module:
    """The class that the family's first task in `TASKS` trains, with the family's tiny config."""
    task = next(task for task in TASKS.values() if task.family == family)
    return task.load("model_class")(FAMILIES[family].tiny_config())


def arguments(output_dir, **overrides) -> TrainingArguments:
    """6 AdamW steps of 4 samples (16 samples: the run crosses an epoch), no checkpoints unless asked."""
    defaults = {
        "use_cpu": True,
        "per_device_train_batch_size": 4,
        "max_steps": 6,
        "learning_rate": 1e-2,
        "weight_decay": 0.1,
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": SEED,
    }
    return TrainingArguments(str(output_dir), **{**defaults, **overrides})


def seeded_trainer(
    output_dir, data=None, eval_data=None, trainer_class=MambaTrainer, callbacks=(), **overrides
) -> Trainer:
    """A tiny Coupled Mamba seeded as the documentation says: `set_seed(args.seed)` before building the model."""
    args = arguments(output_dir, **overrides)
    set_seed(args.seed)
    model = tiny_model()
    data = sentiment_data(16) if data is None else data
    return trainer_class(model=model, args=args, train_dataset=data, eval_dataset=eval_data, callbacks=list(callbacks))


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()}


def assert_equal_weights(actual: dict, expected: dict, atol: float = 0.0) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=0, msg=name)


def trained_weights(output_dir, **overrides) -> dict[str, torch.Tensor]:
    trainer = seeded_trainer(output_dir, **overrides)
    trainer.train()
    return weights(trainer)


class SimulatedCrash(Exception):
    pass


class CrashAtStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise SimulatedCrash(f"killed after step {self.step}")


# ------------------------------------------------------------------------------------------------- weight decay
def optimizer_groups(trainer: Trainer) -> tuple[set[str], set[str]]:
    """(decayed, not decayed) parameter names in the optimizer the trainer builds."""
    optimizer = trainer.create_optimizer()
    names = {id(parameter): name for name, parameter in trainer.model.named_parameters()}
    decayed, skipped = set(), set()
    for group in optimizer.param_groups:
        (decayed if group["weight_decay"] > 0 else skipped).update(names[id(p)] for p in group["params"])
    return decayed, skipped


def expected_no_decay(model: nn.Module) -> set[str]:
    """What the specification lists, found independently: A_log, D, the tiny models' norm layers, biases, position
    embeddings."""
    norms = (nn.LayerNorm, nn.BatchNorm2d, MambaRMSNorm)
    expected = set()
    for module_name, module in model.named_modules():
        for leaf, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            if leaf in ("A_log", "D", "bias", "position_embeddings") or isinstance(module, norms):
                expected.add(name)
    return expected


@pytest.mark.parametrize("family", ["coupled_mamba", "mambavision", "vlm_mamba"])
def test_weight_decay_skips_ssm_parameters_norms_biases_and_position_embeddings(tmp_path, family):
    model = tiny_model(family)
    decayed, skipped = optimizer_groups(MambaTrainer(model=model, args=arguments(tmp_path)))
    assert skipped == expected_no_decay(model) == set(no_decay_parameter_names(model))
    assert decayed == {name for name, _ in model.named_parameters()} - skipped
    projections = {name for name in decayed if name.endswith(tuple(f"{p}.weight" for p in MAMBA_PROJECTIONS))}
    assert projections and any(name.endswith("A_log") for name in skipped)
    # transformers' own Trainer decays Mamba's A_log and D (and MambaVision's BatchNorms): why MambaTrainer exists.
    plain = set(Trainer.get_decay_parameter_names(None, model))
    assert {name for name in skipped if name.endswith((".A_log", ".D"))} <= plain


def test_weight_decay_skips_every_1d_parameter_of_a_mambavision_with_layer_scale_as_timm_does(tmp_path):
    """MambaVision-B/L train with layer-scale γ (1e-5): timm's `param_groups_weight_decay`, which trained them, skips
    every parameter with ndim <= 1; here the γs (conv and mixer blocks) are among the skipped, and so is every other
    1-D parameter, while every decayed parameter is a weight matrix or kernel."""
    from mamba_multimodal.configuration.configuration_mambavision import MambaVisionConfig
    from mamba_multimodal.modeling.modeling_mambavision import MambaVisionForImageClassification

    config = MambaVisionConfig.from_preset("mambavision-tiny-test", layer_scale=1e-5, layer_scale_conv=1e-5)
    model = MambaVisionForImageClassification(config)
    gammas = {f"{module_name}.{leaf}" for module_name, module in model.named_modules()
              for leaf in ("gamma", "gamma_1", "gamma_2") if getattr(module, leaf, None) is not None}  # fmt: skip
    assert len(gammas) >= 4
    decayed, skipped = optimizer_groups(MambaTrainer(model=model, args=arguments(tmp_path)))
    timm_skipped = {name for name, parameter in model.named_parameters() if parameter.ndim <= 1}
    assert gammas <= skipped and timm_skipped <= skipped
    assert all(parameter.ndim >= 2 for name, parameter in model.named_parameters() if name in decayed)
    assert gammas <= set(Trainer.get_decay_parameter_names(None, model))  # transformers' own Trainer decays them


def test_weight_decay_groups_on_a_peft_model_follow_the_same_rule(tmp_path):
    """LoRA on MambaVision: the adapters and the full copy of the head decay, the copy of the final BatchNorm and every
    bias do not; frozen base parameters are not in the optimizer at all."""
    config = LoraConfig(target_modules=["in_proj", "x_proj", "out_proj", "qkv"], modules_to_save=["head", "model.norm"])
    model = get_peft_model(tiny_model("mambavision"), config)
    decayed, skipped = optimizer_groups(MambaTrainer(model=model, args=arguments(tmp_path)))
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert decayed | skipped == trainable
    assert {name for name in trainable if "lora_" in name} <= decayed
    assert any("head.modules_to_save" in name and name.endswith("weight") for name in decayed)
    assert {name for name in trainable if name.endswith(".bias")} <= skipped
    norm_copies = {name for name in trainable if ".model.norm.modules_to_save." in name}
    assert norm_copies and norm_copies <= skipped


# ------------------------------------------------------------------------------------------ non-finite loss
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_non_finite_loss_stops_training_naming_the_step_before_the_weights_change(tmp_path, bad):
    columns = sentiment_data(16).with_format("numpy")[:]
    columns["labels"][8:12] = bad  # in order, batches of 4: the third step's batch
    data = datasets.Dataset.from_dict(columns).with_format("torch")
    in_order = {"train_sampling_strategy": "sequential", "lr_scheduler_type": "constant"}
    trainer = seeded_trainer(tmp_path / "run", data, **in_order)
    with pytest.raises(RuntimeError, match=rf"loss is {bad} at step 3 .*Lower the learning rate"):
        trainer.train()
    # The weights are those after step 2: the bad step was not applied.
    two_steps = trained_weights(tmp_path / "two", data=data, max_steps=2, **in_order)
    assert_equal_weights(weights(trainer), two_steps)


# ------------------------------------------------------------------------------------------------------ seeds
def test_the_seed_decides_the_initial_weights_and_the_data_order(tmp_path):
    def run(seed: int, global_seed: int):
        torch.manual_seed(global_seed)  # whatever the caller's random state
        return trained_weights(tmp_path / f"{seed}-{global_seed}", seed=seed)

    first, again, other = run(SEED, global_seed=0), run(SEED, global_seed=1), run(SEED + 1, global_seed=0)
    assert_equal_weights(again, first)
    assert max((first[name] - other[name]).abs().max() for name in first) > 1e-3


# ------------------------------------------------------------------------------------------- resume, crashes
def test_a_run_killed_after_a_checkpoint_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    saving = {"save_strategy": "steps", "save_steps": 3}
    uninterrupted = trained_weights(tmp_path / "straight", **saving)
    output = tmp_path / "crashed"
    with pytest.raises(SimulatedCrash):
        seeded_trainer(output, callbacks=[CrashAtStep(4)], **saving).train()
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-3"]
    resumed = seeded_trainer(output, **saving)
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 6
    assert_equal_weights(weights(resumed), uninterrupted)  # exact: same operations in the same order
    # Restarted from checkpoint-3 again, the run saves step 6 a second time over the existing checkpoint-6.
    again = seeded_trainer(output, **saving)
    again.train(resume_from_checkpoint=str(output / "checkpoint-3"))
    assert_equal_weights(weights(again), uninterrupted)
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    assert {p.name for p in (output / "checkpoint-6").iterdir()} >= CHECKPOINT_FILES


def crash_while_saving_step(monkeypatch, step: int) -> None:
    """Makes Trainer write part of `optimizer.pt` at `step`, then fail as a full disk does."""
    save = Trainer._save_optimizer_and_scheduler

    def half_written(self, output_dir):
        if self.state.global_step == step:
            Path(output_dir, "optimizer.pt").write_bytes(b"\x80\x02half an optimizer")
            raise OSError(28, "No space left on device")
        save(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", half_written)


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_to_resume_from(tmp_path, monkeypatch):
    saving = {"save_strategy": "steps", "save_steps": 3}
    uninterrupted = trained_weights(tmp_path / "straight", **saving)
    output = tmp_path / "crashed"
    crash_while_saving_step(monkeypatch, 6)
    with pytest.raises(OSError, match="No space left"):
        seeded_trainer(output, **saving).train()
    monkeypatch.undo()
    # Only the complete checkpoint-3 is visible, and resume picks it.
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-3"]
    assert {p.name for p in (output / "checkpoint-3").iterdir()} >= CHECKPOINT_FILES
    assert get_last_checkpoint(output) == str(output / "checkpoint-3")
    # A process killed mid-save leaves its staging folder: hidden from resume, removed by the next save.
    leftover = output / ".staging-checkpoint-6" / "checkpoint-6"
    leftover.mkdir(parents=True)
    (leftover / "optimizer.pt").write_bytes(b"half")
    resumed = seeded_trainer(output, **saving)
    resumed.train(resume_from_checkpoint=True)
    assert_equal_weights(weights(resumed), uninterrupted)
    assert sorted(p.name for p in output.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    assert {p.name for p in (output / "checkpoint-6").iterdir()} >= CHECKPOINT_FILES
    torch.load(output / "checkpoint-6" / "optimizer.pt", weights_only=True)


def test_transformers_own_trainer_leaves_a_half_checkpoint_that_resume_would_pick(tmp_path, monkeypatch):
    """The reason for MambaTrainer's staging (transformers 5.24 writes checkpoint-N in place). If this fails,
    transformers saves atomically itself and the staging can go."""
    output = tmp_path / "plain"
    crash_while_saving_step(monkeypatch, 6)
    with pytest.raises(OSError):
        seeded_trainer(output, trainer_class=Trainer, save_strategy="steps", save_steps=3).train()
    assert get_last_checkpoint(output) == str(output / "checkpoint-6")
    assert (output / "checkpoint-6" / "optimizer.pt").read_bytes().endswith(b"half an optimizer")


def test_the_best_checkpoint_is_recorded_under_its_final_name(tmp_path):
    """Trainer notes the best checkpoint under the path it wrote to; after the rename it must name the real folder,
    in memory and in the saved trainer_state.json, so load_best_model_at_end and resume find it."""
    evaluating = {"eval_strategy": "steps", "eval_steps": 3, "save_strategy": "steps", "save_steps": 3}
    best = {"load_best_model_at_end": True, "metric_for_best_model": "loss", "greater_is_better": False}
    trainer = seeded_trainer(tmp_path / "run", eval_data=sentiment_data(8), **evaluating, **best)
    trainer.train()
    assert trainer.state.best_model_checkpoint in {str(tmp_path / "run" / f"checkpoint-{n}") for n in (3, 6)}
    saved = (tmp_path / "run" / "checkpoint-6" / "trainer_state.json").read_text()
    assert ".staging" not in saved and trainer.state.best_model_checkpoint in saved


# ------------------------------------------------------------------------------------------------ processes
def run_two_processes(launcher: list[str], output: Path, tmp_path: Path) -> None:
    command = [*launcher, str(SCRIPT), str(output), "--batch-size", "2"]
    result = launched(command, tmp_path / "hf_home", finished="trained on ")
    assert "trained on 2 process(es), global batch 4" in result.stdout
    # Every checkpoint holds the main process's files and both processes' RNG states; no staging folder is left.
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == ["checkpoint-2", "checkpoint-4"]
    for checkpoint in ("checkpoint-2", "checkpoint-4"):
        files = {p.name for p in (output / checkpoint).iterdir()}
        assert files >= {"model.safetensors", "optimizer.pt", "trainer_state.json"} | PROCESS_RNG_STATES


def check_one_process_with_batch_4_trains_the_same(two_processes: Path, tmp_path: Path) -> None:
    train_script(tmp_path / "one", batch_size=4)
    single, double = load_file(tmp_path / "one" / "model.safetensors"), load_file(two_processes / "model.safetensors")
    assert_equal_weights(double, single, atol=1e-6)
    set_seed(SEED)
    initial = tiny_model().state_dict()
    assert max((single[name] - initial[name]).abs().max() for name in single) > 1e-2, "the weights must move"


def test_two_processes_with_batch_b_train_the_weights_one_process_trains_with_batch_2b(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run_two_processes(launcher, tmp_path / "two", tmp_path)
    check_one_process_with_batch_4_trains_the_same(tmp_path / "two", tmp_path)


@pytest.mark.slow
def test_accelerate_launch_with_two_processes_trains_the_same_weights(tmp_path):
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    settings = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    run_two_processes([*accelerate, *settings, "--main_process_port", str(free_port())], tmp_path / "two", tmp_path)
    check_one_process_with_batch_4_trains_the_same(tmp_path / "two", tmp_path)


BUILD_AND_SCAN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch
    from mamba_multimodal.modeling import ssm, ssm_cpu

    ready, go = Path(sys.argv[1]), Path(sys.argv[2])
    ready.touch()
    while not go.exists():  # both processes start building at the same moment
        time.sleep(0.01)
    if ssm_cpu.load() is None:
        sys.exit(f"no kernel: {ssm_cpu.build_error}")
    g = torch.Generator().manual_seed(0)
    u, delta, z = (torch.randn(2, 8, 16, generator=g) for _ in range(3))
    B, C = (torch.randn(2, 4, 16, generator=g) for _ in range(2))
    A = -torch.rand(8, 4, generator=g) - 0.1
    out = ssm.selective_scan(u, delta, A, B, C, z=z, backend="cpu")
    torch.testing.assert_close(out, ssm.selective_scan_ref(u, delta, A, B, C, z=z), atol=1e-4, rtol=1e-4)
    print("scanned")
    """
)


def test_two_processes_building_the_cpu_kernel_at_once_both_get_a_working_kernel(tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    env = {**os.environ, "MAMBA_MULTIMODAL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    readies = [tmp_path / f"ready-{i}" for i in range(2)]
    command = [sys.executable, "-c", BUILD_AND_SCAN]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen([*command, str(ready), str(go)], env=env, **pipes) for ready in readies]
    try:
        deadline = time.monotonic() + 120
        while not all(ready.exists() for ready in readies) and time.monotonic() < deadline:
            time.sleep(0.05)
        go.touch()
        results = [process.communicate(timeout=240) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0 and "scanned" in stdout, stderr[-3000:]
    files = [path.relative_to(cache) for path in cache.rglob("*") if path.is_file()]
    assert len(files) == 1 and files[0].name == "libssm_cpu.so", f"one library and no partial build: {files}"
