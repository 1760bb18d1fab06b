"""The VLM recipes of the task table: Cobra's (tower frozen, one stage) and LLaVA-1.5's two stages, their training
arguments (reference/vlm_coco_vqa.md A2 / E2, LLaVA's scripts/v1_5), what each freezes, bf16 only on a GPU, and the
gradient checkpointing they turn on, which the vision towers and the Mamba LM honour."""

import pytest
import torch
from transformers import MambaConfig
from transformers.modeling_layers import GradientCheckpointingLayer

from mamba_multimodal import MambaVisionConfig, VLMambaConfig, VLMambaForConditionalGeneration
from mamba_multimodal.training import flow
from mamba_multimodal.training.tasks import TASKS

TINY_RUN = ["--model", "tiny", "--max-steps", "1", "--max-train-samples", "4", "--max-eval-samples", "2",
            "--per-device-train-batch-size", "2", "--per-device-eval-batch-size", "2", "--eval-strategy", "no",
            "--max-new-tokens", "2", "--report-to", "none"]  # fmt: skip
TOWERS = {
    "vision_mamba": {"model_type": "vision_mamba", "image_size": 32, "patch_size": 8, "hidden_size": 16,
                     "num_hidden_layers": 3},
    "mambavision": MambaVisionConfig.from_preset("mambavision-tiny-test").to_dict(),
}  # fmt: skip


def vlm(tower: str, layers: int = 3) -> VLMambaForConditionalGeneration:
    text = MambaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=layers, state_size=8, use_mambapy=False)
    config = VLMambaConfig(vision_config=TOWERS[tower], text_config=text, image_token_id=63)
    return VLMambaForConditionalGeneration(config)


def batch(model, size: int = 2, text: int = 12) -> dict:
    config = model.config
    image = torch.full((size, config.image_seq_length), config.image_token_id)
    input_ids = torch.cat([image, torch.randint(1, 60, (size, text))], 1)
    side = config.vision_config.image_size
    return {"input_ids": input_ids, "pixel_values": torch.randn(size, 3, side, side), "labels": input_ids.clone()}


def arguments(task: str, recipe: str, *extra: str):
    return flow.parse("train", [task, "--recipe", recipe, "--output-dir", "unused", *extra])[3]


# ------------------------------------------------------------------------------------------------ the table
@pytest.mark.parametrize("task", ["caption", "vqa"])
def test_cobra_recipe_is_cobras_stage_with_the_tower_frozen(task):
    args = arguments(task, "cobra")
    assert (args.num_train_epochs, args.learning_rate, args.weight_decay) == (2, 2e-5, 0.1)
    assert (args.warmup_steps, args.lr_scheduler_type, args.optim) == (0.03, "cosine", "adamw_torch")
    assert args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps == 128
    assert args.gradient_checkpointing and not args.bf16  # no GPU here
    assert TASKS[task].recipes["cobra"].frozen == ("vision_tower",)


def test_llava_stages_train_the_projector_then_projector_and_language_model():
    stage1, stage2 = arguments("caption", "llava-stage1"), arguments("vqa", "llava-stage2")
    assert (stage1.num_train_epochs, stage1.learning_rate, stage1.weight_decay) == (1, 1e-3, 0.0)
    assert stage1.per_device_train_batch_size * stage1.gradient_accumulation_steps == 256
    assert (stage2.num_train_epochs, stage2.learning_rate, stage2.weight_decay) == (1, 2e-5, 0.0)
    assert stage2.per_device_train_batch_size * stage2.gradient_accumulation_steps == 128
    assert all(args.warmup_steps == 0.03 and args.gradient_checkpointing for args in (stage1, stage2))
    recipes = TASKS["vqa"].recipes
    assert recipes["llava-stage1"].frozen == ("vision_tower", "language_model", "lm_head")
    assert recipes["llava-stage2"].frozen == ("vision_tower",)


def test_bf16_is_chosen_on_a_gpu_only_and_an_explicit_option_wins(monkeypatch):
    assert not arguments("vqa", "cobra").bf16
    monkeypatch.setattr(flow, "_gpu_has_bf16", lambda: True)  # --use-cpu: TrainingArguments refuses bf16 here else
    assert arguments("vqa", "cobra", "--use-cpu", "true").bf16
    assert not arguments("vqa", "cobra", "--use-cpu", "true", "--bf16", "false").bf16
    assert not arguments("vqa", "cpu").bf16  # the recipes sized for a CPU never choose it


def test_an_explicit_gradient_checkpointing_option_wins_over_the_recipe():
    assert not arguments("vqa", "cobra", "--gradient-checkpointing", "false").gradient_checkpointing


# ------------------------------------------------------------------------------------------------ freezing
def trained_once(model, frozen: tuple[str, ...]):
    """(state before, state after, names that got a gradient) of one AdamW step in training mode."""
    flow.freeze(model, frozen)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch(model)).loss.backward()
    optimizer.step()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    return before, model.state_dict(), with_grad


def changed(before, after, prefix: str) -> list[bool]:
    return [not torch.equal(before[name], after[name]) for name in before if name.startswith(prefix)]


def test_a_frozen_mambavision_tower_keeps_its_weights_and_batchnorm_statistics():
    torch.manual_seed(0)
    before, after, with_grad = trained_once(vlm("mambavision"), ("vision_tower",))
    assert not any(changed(before, after, "model.vision_tower."))  # running_mean / running_var included
    assert not any(name.startswith("model.vision_tower.") for name in with_grad)
    assert all(changed(before, after, "model.multi_modal_projector."))
    assert any(changed(before, after, "model.language_model."))
    unfrozen_before, unfrozen_after, _ = trained_once(vlm("mambavision"), ())
    assert any(changed(unfrozen_before, unfrozen_after, "model.vision_tower."))  # the check can fail


def test_llava_stage1_trains_the_projector_alone():
    torch.manual_seed(0)
    model = vlm("vision_mamba")
    _, _, with_grad = trained_once(model, TASKS["caption"].recipes["llava-stage1"].frozen)
    assert with_grad == {name for name, _ in model.named_parameters() if ".multi_modal_projector." in name}


def test_a_recipe_that_names_a_missing_part_is_a_usage_error():
    with pytest.raises(flow.UsageError, match="'vision_tower'"):
        flow.freeze(torch.nn.Linear(2, 2), ("vision_tower",))


def test_a_part_frozen_twice_carries_one_evaluation_mode_hook():
    """The recipe's parts plus the same name given with --freeze, then frozen again: one hook per module."""
    model = torch.nn.ModuleDict({"vision_tower": torch.nn.Linear(2, 2), "lm_head": torch.nn.Linear(2, 2)})
    flow.freeze(model, ("vision_tower", "vision_tower"))
    flow.freeze(model, ("vision_tower", "lm_head"))
    hooks = {name: list(model[name]._forward_pre_hooks.values()) for name in model}
    assert hooks == {"vision_tower": [flow._in_evaluation_mode], "lm_head": [flow._in_evaluation_mode]}
    with pytest.raises(flow.UsageError, match="'vision_towr'"):
        flow.freeze(model, ("vision_tower", "vision_towr"))
    assert len(model["vision_tower"]._forward_pre_hooks) == 1


def test_a_cobra_run_from_the_command_line_leaves_the_tower_as_it_was(tmp_path):
    argv = ["vqa", "--recipe", "cobra", *TINY_RUN, "--warmup-steps", "0", "--output-dir", str(tmp_path)]
    task, model_args, data_args, args = flow.parse("train", argv)
    seen = {}

    def snapshot(run, args):
        seen.update(trainable=sum(p.numel() for p in run.model.parameters() if p.requires_grad),
                    state={k: v.clone() for k, v in run.model.state_dict().items()})  # fmt: skip

    run, _ = flow.train(task, model_args, data_args, args, on_built=snapshot)
    tower = [name for name in seen["state"] if name.startswith("model.vision_tower.")]
    assert tower and all(torch.equal(seen["state"][name], run.model.state_dict()[name]) for name in tower)
    assert seen["trainable"] == sum(p.numel() for n, p in run.model.named_parameters() if "vision_tower" not in n)
    assert any(changed(seen["state"], run.model.state_dict(), "model.multi_modal_projector."))


def test_freeze_and_cache_vision_features_from_the_command_line_reuse_the_frozen_towers_features(tmp_path):
    """--freeze vision_tower keeps the tower as it was; --cache-vision-features then runs it once per distinct image
    (the run's 4 rows hold 4 images, seen in each of 2 epochs) and is dropped before the saved model is scored."""
    argv = ["vqa", *TINY_RUN, "--max-steps", "4", "--freeze", "vision_tower", "--cache-vision-features", "--lora",
            "--output-dir", str(tmp_path)]  # fmt: skip
    task, model_args, data_args, args = flow.parse("train", argv)
    seen = {}

    def snapshot(run, args):
        base = run.model.get_base_model()
        seen.update(cache=base.model.vision_feature_cache, calls=[],
                    tower={k: v.clone() for k, v in base.model.vision_tower.state_dict().items()})  # fmt: skip
        base.model.vision_tower.register_forward_pre_hook(lambda module, args: seen["calls"].append(len(args[0])))

    run, _ = flow.train(task, model_args, data_args, args, on_built=snapshot)
    cache = seen["cache"]
    # two batches of new images, none in the second epoch; then the scorer's 2 test images, the cache dropped
    assert (len(cache), cache.misses, cache.hits) == (4, 4, 4) and seen["calls"] == [2, 2, 2]
    vlm = run.model.get_base_model().model  # run.model: the PeftModel, merged
    assert all(torch.equal(vlm.vision_tower.state_dict()[name], value) for name, value in seen["tower"].items())
    assert vlm.vision_feature_cache is None


# ------------------------------------------------------------------------------------------------ checkpointing
def saved_activation_bytes(model, inputs) -> tuple[int, dict[str, torch.Tensor]]:
    """Bytes of the tensors autograd keeps for the backward (parameters excluded) in one forward, and the gradients
    of one backward."""
    parameters = {p.data_ptr() for p in model.parameters()}
    saved = []

    def pack(tensor):
        if tensor.data_ptr() not in parameters:
            saved.append(tensor.numel() * tensor.element_size())
        return tensor

    model.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(**inputs).loss
    loss.backward()
    return sum(saved), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tower", list(TOWERS))
def test_gradient_checkpointing_through_tower_and_lm_keeps_the_gradients_and_saves_less(tower):
    torch.manual_seed(0)
    model = vlm(tower).train()
    inputs = batch(model)
    plain_bytes, plain = saved_activation_bytes(model, inputs)
    model.gradient_checkpointing_enable()
    for part in (model.model.vision_tower, model.model.language_model):
        blocks = [module for module in part.modules() if isinstance(module, GradientCheckpointingLayer)]
        assert blocks and all(block.gradient_checkpointing for block in blocks)
    checkpointed_bytes, checkpointed = saved_activation_bytes(model, inputs)
    assert plain.keys() == checkpointed.keys() and any(name.startswith("model.vision_tower.") for name in plain)
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)
    assert checkpointed_bytes < 0.5 * plain_bytes, (checkpointed_bytes, plain_bytes)
