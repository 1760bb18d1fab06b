"""Our Mamba LM against transformers' MambaForCausalLM, and the behaviour a Hugging Face user relies on."""

import warnings

import pytest
import torch
import transformers
from peft import LoraConfig, get_peft_model, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from transformers import MambaConfig

from mamba_multimodal import MambaForCausalLM, MambaModel
from mamba_multimodal.configuration import configuration_mamba

ATOL = 1e-4
VOCAB = 64


def tiny_config(**overrides):
    values = dict(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, state_size=8, conv_kernel=4, expand=2,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, use_mambapy=False,
    )  # fmt: skip
    values.update(overrides)
    return MambaConfig(**values)


def twin_models(**overrides):
    """transformers' model and ours with the same random weights, in eval mode."""
    config = tiny_config(**overrides)
    theirs = transformers.MambaForCausalLM(config).eval()
    with torch.no_grad():  # larger Δ and A than the init so that the state matters for the outputs
        for name, parameter in theirs.named_parameters():
            if name.endswith(("A_log", "dt_proj.bias", "conv1d.weight")):
                parameter.add_(torch.randn_like(parameter) * 0.5)
    ours = MambaForCausalLM(config).eval()
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def test_state_dict_keys_and_shapes_equal_transformers():
    theirs, ours = twin_models()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("overrides", [{}, {"use_bias": True, "use_conv_bias": False}, {"residual_in_fp32": False}])
def test_logits_and_loss_equal_transformers(overrides):
    theirs, ours = twin_models(**overrides)
    input_ids = torch.randint(3, VOCAB, (2, 23))
    with torch.no_grad():
        expected, got = theirs(input_ids, labels=input_ids), ours(input_ids, labels=input_ids)
    torch.testing.assert_close(got.logits, expected.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(got.loss, expected.loss, atol=ATOL, rtol=0)


@pytest.mark.parametrize("generation", [{"do_sample": False}, {"num_beams": 3, "do_sample": False}])
def test_generate_equals_transformers(generation):
    theirs, ours = twin_models(tie_word_embeddings=False)  # a tied random head just repeats the last token
    input_ids = torch.randint(3, VOCAB, (2, 9))
    kwargs = dict(max_new_tokens=12, min_new_tokens=12, attention_mask=torch.ones_like(input_ids), **generation)
    expected, got = theirs.generate(input_ids, **kwargs), ours.generate(input_ids, **kwargs)
    assert torch.equal(got, expected)
    assert len(set(got[0, 9:].tolist())) > 1, "a degenerate continuation would make this comparison vacuous"


def test_sampling_is_reproducible_and_matches_transformers():
    theirs, ours = twin_models(tie_word_embeddings=False)
    input_ids = torch.randint(3, VOCAB, (2, 5))
    kwargs = dict(max_new_tokens=10, do_sample=True, top_k=20, attention_mask=torch.ones_like(input_ids))
    torch.manual_seed(7)
    expected = theirs.generate(input_ids, **kwargs)
    torch.manual_seed(7)
    assert torch.equal(ours.generate(input_ids, **kwargs), expected)


def test_cached_steps_equal_the_full_forward():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 16))
    with torch.no_grad():
        full = model(input_ids).logits
        prefix = model(input_ids[:, :6], use_cache=True)
        cache, logits = prefix.cache, [prefix.logits]
        for t in range(6, 16):
            step = model(input_ids[:, t : t + 1], cache=cache, use_cache=True)
            logits.append(step.logits)
    torch.testing.assert_close(torch.cat(logits, dim=1), full, atol=ATOL, rtol=0)


def test_a_multi_token_continuation_starts_from_the_cached_state():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (1, 14))
    with torch.no_grad():
        full = model(input_ids).logits
        first = model(input_ids[:, :5], use_cache=True)
        rest = model(input_ids[:, 5:], cache=first.cache, use_cache=True)
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], dim=1), full, atol=ATOL, rtol=0)


def test_memory_per_generated_token_is_constant():
    _, model = twin_models()
    with torch.no_grad():
        cache = model(torch.randint(3, VOCAB, (1, 30)), use_cache=True).cache
        sizes = []
        for _ in range(20):
            model(torch.randint(3, VOCAB, (1, 1)), cache=cache, use_cache=True)
            sizes.append(
                sum(layer.conv_states[0].numel() + layer.recurrent_states[0].numel() for layer in cache.layers)
            )
    assert len(set(sizes)) == 1
    assert sizes[0] == 2 * (64 * 4 + 64 * 8)  # per layer: conv window (d_in, k) + SSM state (d_in, n)


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_positions_contribute_nothing(side, use_bias):
    _, model = twin_models(use_bias=use_bias)
    short, long = torch.randint(3, VOCAB, (1, 7)), torch.randint(3, VOCAB, (1, 11))
    pad = torch.zeros(1, 4, dtype=torch.long)
    batch = torch.cat([torch.cat([pad, short], 1) if side == "left" else torch.cat([short, pad], 1), long])
    mask = (torch.arange(11) >= 4) if side == "left" else (torch.arange(11) < 7)
    mask = torch.stack([mask, torch.ones(11, dtype=torch.bool)]).long()
    with torch.no_grad():
        padded = model(batch, attention_mask=mask, use_cache=True)
        alone = model(short, use_cache=True)
    real = mask[0].bool()
    torch.testing.assert_close(padded.logits[0, real], alone.logits[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(padded.logits[1], model(long).logits[0], atol=ATOL, rtol=0)
    for padded_layer, alone_layer in zip(padded.cache.layers, alone.cache.layers, strict=True):
        torch.testing.assert_close(
            padded_layer.recurrent_states[0][0], alone_layer.recurrent_states[0][0], atol=ATOL, rtol=0
        )


def test_left_padded_batched_generation_equals_one_by_one():
    _, model = twin_models(tie_word_embeddings=False)
    prompts = [torch.randint(3, VOCAB, (n,)) for n in (4, 9)]
    batch = torch.zeros(2, 9, dtype=torch.long)
    mask = torch.zeros(2, 9, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        batch[row, 9 - len(prompt) :], mask[row, 9 - len(prompt) :] = prompt, 1
    batched = model.generate(batch, attention_mask=mask, max_new_tokens=6, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(
            prompt[None], attention_mask=torch.ones(1, len(prompt), dtype=torch.long), max_new_tokens=6, do_sample=False
        )
        assert torch.equal(batched[row, 9:], alone[0, len(prompt) :])


def test_inputs_embeds_equal_input_ids():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 8))
    with torch.no_grad():
        from_ids = model(input_ids).logits
        from_embeds = model(inputs_embeds=model.get_input_embeddings()(input_ids)).logits
    torch.testing.assert_close(from_embeds, from_ids)


def assert_every_adapter_trains_and_merges(model, forward, merge, targets, layers=2):
    """One backward: every LoRA A and B gets a non-zero gradient and nothing else does; merged == unmerged."""
    model.train()
    forward().float().pow(2).mean().backward()
    adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert len(adapters) == 2 * len(targets) * layers  # A and B, per target, per layer
    for name, parameter in adapters.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{name} got no gradient"
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
    model.eval()
    with torch.no_grad():
        unmerged = forward()
        merge()
        torch.testing.assert_close(forward(), unmerged, atol=ATOL, rtol=0)


def test_lora_adapters_that_peft_allows_on_a_mamba_lm_train_and_merge():
    """PEFT refuses out_proj/conv1d for model_type "mamba" (transformers' CUDA path bypasses them)."""
    _, model = twin_models()
    targets = ["in_proj", "x_proj", "dt_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    input_ids = torch.randint(3, VOCAB, (2, 10))
    assert_every_adapter_trains_and_merges(
        peft_model, lambda: peft_model(input_ids=input_ids).logits, peft_model.merge_adapter, targets
    )


def test_lora_on_out_proj_and_conv1d_trains_too_because_the_mixer_calls_them_as_modules():
    """Our mixer never hands a weight to a kernel, so the adapters PEFT's Mamba guard forbids work here: models built
    on these layers with their own model_type (VLM-Mamba) rely on it. The guard looks at `model.config.model_type`,
    so the adapters are injected into the block stack directly."""
    _, model = twin_models()
    targets = ["in_proj", "x_proj", "dt_proj", "out_proj", "conv1d"]
    # PEFT's LoRA on a grouped conv needs the rank to be a multiple of the groups (depthwise: d_in = 64).
    lora = LoraConfig(r=4, rank_pattern={"conv1d": 64}, target_modules=targets, init_lora_weights=False)
    blocks = inject_adapter_in_model(lora, model.backbone.layers)
    for name, parameter in blocks.named_parameters():
        parameter.requires_grad_("lora_" in name)
    hidden = torch.randn(2, 10, 32)

    def forward():
        h = hidden
        for block in blocks:
            h = block(h)
        return h

    def merge():  # PEFT cannot merge LoRA into a grouped (depthwise) conv: that adapter stays unmerged
        for module in blocks.modules():
            if isinstance(module, LoraLayer) and isinstance(module.get_base_layer(), torch.nn.Linear):
                module.merge()

    assert_every_adapter_trains_and_merges(blocks, forward, merge, targets)


def test_save_load_round_trip_and_loading_a_transformers_checkpoint(tmp_path):
    theirs, _ = twin_models()
    input_ids = torch.randint(3, VOCAB, (1, 8))
    theirs.save_pretrained(tmp_path / "transformers")
    loaded = MambaForCausalLM.from_pretrained(tmp_path / "transformers").eval()
    loaded.save_pretrained(tmp_path / "ours")
    reloaded = MambaForCausalLM.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        expected = theirs(input_ids).logits
        torch.testing.assert_close(loaded(input_ids).logits, expected, atol=ATOL, rtol=0)
        assert torch.equal(reloaded(input_ids).logits, loaded(input_ids).logits)
    assert reloaded.lm_head.weight.data_ptr() == reloaded.backbone.embeddings.weight.data_ptr()


def test_a_transformers_config_loads_as_the_package_config_and_the_saved_folder_loads_in_transformers(tmp_path):
    """The LM's config class is transformers' MambaConfig plus the declared `scan_backend`, same model_type."""
    theirs, _ = twin_models()
    theirs.save_pretrained(tmp_path / "transformers")
    loaded = MambaForCausalLM.from_pretrained(tmp_path / "transformers", scan_backend="pytorch").eval()
    assert isinstance(loaded.config, configuration_mamba.MambaConfig) and loaded.config.model_type == "mamba"
    assert loaded.config.scan_backend == "pytorch"
    with pytest.raises(ValueError, match="scan_backend"):
        loaded.config.scan_backend = "fast"
    loaded.save_pretrained(tmp_path / "ours")
    back_in_transformers = transformers.MambaForCausalLM.from_pretrained(tmp_path / "ours").eval()
    input_ids = torch.randint(3, VOCAB, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(back_in_transformers(input_ids).logits, loaded(input_ids).logits, atol=ATOL, rtol=0)


def test_bad_inputs_raise_clear_errors():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 5))
    with pytest.raises(ValueError, match="exactly one of input_ids"):
        model(input_ids, inputs_embeds=torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match="exactly one of input_ids"):
        model()
    with pytest.raises(ValueError, match="input_ids must be 2-D"):
        model(input_ids[0])
    with pytest.raises(ValueError, match=r"inputs_embeds must be \(batch, length, 32\)"):
        model(inputs_embeds=torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"attention_mask must be \(batch, length\)"):
        model(input_ids, attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="hidden_act must be 'silu'"):
        MambaForCausalLM(tiny_config(hidden_act="gelu"))


def test_a_cached_continuation_can_be_trained_through_and_matches_the_full_gradients():
    """Continuing from a cache with autograd on (a prefix then the rest, e.g. truncated BPTT): backward works, and the
    parameters get the gradients of the same loss computed by one full forward."""
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 14))
    model(input_ids).logits[:, 5:].pow(2).mean().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    prefix = model(input_ids[:, :5], use_cache=True)
    model(input_ids[:, 5:], cache=prefix.cache, use_cache=True).logits.pow(2).mean().backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_one_step_continuations_with_autograd_equal_the_full_forward():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (1, 9))
    full = model(input_ids).logits
    out = model(input_ids[:, :4], use_cache=True)
    logits = [out.logits]
    for t in range(4, 9):
        logits.append(model(input_ids[:, t : t + 1], cache=out.cache, use_cache=True).logits)
    steps = torch.cat(logits, dim=1)
    torch.testing.assert_close(steps, full, atol=ATOL, rtol=0)
    steps.sum().backward()  # the cache was read and replaced, never modified under autograd's feet


def test_the_cache_has_the_new_name_and_the_old_names_still_work():
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (1, 9))
    with torch.no_grad():
        full = model(input_ids).logits
        for name in ("cache", "cache_params", "past_key_values"):
            prefix = model(input_ids[:, :4], use_cache=True)
            assert isinstance(prefix.cache, transformers.DynamicCache)
            assert prefix.cache_params is prefix.cache  # read under the pre-5.24 name too
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rest = model(input_ids[:, 4:], use_cache=True, **{name: prefix.cache}).logits
            torch.testing.assert_close(rest, full[:, 4:], atol=ATOL, rtol=0, msg=name)
            deprecations = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
            expected = f"`{name}` is deprecated and will be removed in version 5.40.0 for `MambaForCausalLM.forward`"
            assert deprecations == ([] if name == "cache" else [f"{expected}. Use `cache` instead."])
    with pytest.raises(ValueError, match="Both `cache_params` and `cache` are set"):
        model(input_ids, cache=prefix.cache, cache_params=model(input_ids, use_cache=True).cache)


@pytest.mark.parametrize("part", ["model", "backbone"])
def test_the_keywords_generate_trainer_and_peft_pass_are_accepted(part):
    """PEFT's CAUSAL_LM wrapper passes output_attentions=None, generate() and Trainer pass position and loss keywords,
    and a wrapper may pass None for an argument the model does not have: none of them changes the outputs."""
    _, model = twin_models()
    module = model if part == "model" else model.backbone
    input_ids = torch.randint(3, VOCAB, (2, 4))
    with torch.no_grad():
        plain = module(input_ids)[0]
        given = module(
            input_ids,
            output_attentions=False,
            position_ids=torch.arange(4).expand(2, -1),
            cache_position=torch.arange(4),
            token_type_ids=None,
            return_dict=True,
        )[0]
    torch.testing.assert_close(given, plain, atol=0, rtol=0)


def test_causal_lm_loss_honors_shift_labels():
    """transformers' loss takes targets already aligned with the logits (`shift_labels`, from padding-free collators
    and multi-token prediction): the loss is cross-entropy against them, not against the shifted labels."""
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 8))
    shift_labels = torch.randint(3, VOCAB, (2, 8))
    shift_labels[0, :3] = -100
    with torch.no_grad():
        out = model(input_ids, labels=input_ids, shift_labels=shift_labels)
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, VOCAB), shift_labels.reshape(-1))
    torch.testing.assert_close(out.loss, expected, atol=1e-6, rtol=0)
    shifted = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, VOCAB), input_ids[:, 1:].reshape(-1))
    assert not torch.allclose(out.loss, shifted), "the labels were used instead of shift_labels"


def test_num_items_in_batch_reaches_the_loss():
    """Trainer passes the number of label tokens over all accumulated batches: the loss is their sum over it."""
    _, model = twin_models()
    input_ids = torch.randint(3, VOCAB, (2, 8))
    labels = input_ids.clone()
    labels[0, :3] = -100
    with torch.no_grad():
        out = model(input_ids, labels=labels)
        scaled = model(input_ids, labels=labels, num_items_in_batch=torch.tensor(40)).loss
    targets = labels[:, 1:].reshape(-1)
    summed = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].reshape(-1, VOCAB), targets, ignore_index=-100, reduction="sum"
    )
    torch.testing.assert_close(out.loss, summed / (targets != -100).sum(), atol=1e-5, rtol=0)
    torch.testing.assert_close(scaled, summed / 40, atol=1e-5, rtol=0)


def test_a_graph_traced_with_a_full_mask_still_honours_padding():
    """No data-dependent shortcut for an all-ones mask: it would be frozen into the traced graph."""
    _, model = twin_models(use_bias=True)
    input_ids = torch.randint(3, VOCAB, (2, 10))
    model.config.return_dict = False
    model.requires_grad_(False)  # traced functions hold the weights as constants

    def logits(ids, mask):
        return model(ids, attention_mask=mask, use_cache=False)[0]

    with torch.no_grad():
        traced = torch.jit.trace(logits, (input_ids, torch.ones_like(input_ids)), check_trace=False)
        padded = torch.ones_like(input_ids)
        padded[0, :4] = 0
        torch.testing.assert_close(traced(input_ids, padded), logits(input_ids, padded), atol=ATOL, rtol=0)
        assert not torch.allclose(traced(input_ids, padded), logits(input_ids, torch.ones_like(input_ids)))


def test_an_original_state_spaces_checkpoint_loads_its_embedding_and_saves_transformers_names(tmp_path):
    """state-spaces/mamba names the embedding `backbone.embedding`; transformers `backbone.embeddings`."""
    from safetensors.torch import load_file, save_file

    _, model = twin_models()
    model.save_pretrained(tmp_path / "original")
    weights = load_file(tmp_path / "original" / "model.safetensors")
    weights = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in weights.items()}
    save_file(weights, tmp_path / "original" / "model.safetensors", metadata={"format": "pt"})
    input_ids = torch.randint(3, VOCAB, (1, 8))
    loaded = MambaForCausalLM.from_pretrained(tmp_path / "original").eval()
    base = MambaModel.from_pretrained(tmp_path / "original")
    with torch.no_grad():
        assert torch.equal(loaded(input_ids).logits, model(input_ids).logits)
    assert torch.equal(base.embeddings.weight, model.backbone.embeddings.weight)
    loaded.save_pretrained(tmp_path / "resaved")
    assert "backbone.embeddings.weight" in load_file(tmp_path / "resaved" / "model.safetensors")
