"""The fused C++ decode step (`mamba_decode.py`) against mamba.py's module-by-module step, which stays the reference:
the same logits and cache, the same tokens from every generation strategy, and the reference wherever the fused step
does not apply."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_generation import IMAGE_TOKEN, VOCAB, left_padded_prompts
from transformers import DynamicCache, MambaConfig

from mamba_multimodal import MambaForCausalLM, VLMambaConfig, VLMambaForConditionalGeneration
from mamba_multimodal.modeling import mamba_decode, ssm_cpu
from mamba_multimodal.modeling.cache_utils import (
    COUNTS_RECURRENT_TOKENS,
    RECURRENT_CACHE_RELEASE,
    SUPPORTS_STATE_ROLLBACK,
)


def text_config(hidden_size=32, num_hidden_layers=2, **overrides):
    values = dict(
        vocab_size=VOCAB, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, state_size=8, conv_kernel=4,
        expand=2, pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, use_mambapy=False,
    )  # fmt: skip
    values.update(overrides)
    return MambaConfig(**values)


def ready(model, dtype=torch.float32):
    """Eval mode, larger Δ and A than the init (so that the state matters), no early stop, in `dtype`."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("A_log", "dt_proj.bias", "conv1d.weight")):
                parameter.add_(torch.randn_like(parameter) * 0.5)
    model.generation_config.eos_token_id = None
    return model.eval().to(dtype)


def twins(model):
    """(model, a copy whose scan_backend is "pytorch": every step on the reference path)."""
    reference = copy.deepcopy(model)
    text = getattr(reference.config, "text_config", reference.config)
    text.scan_backend = "pytorch"
    return model, reference


def mamba_lm(dtype=torch.float32, **overrides):
    torch.manual_seed(0)
    return ready(MambaForCausalLM(text_config(**overrides)), dtype), {}


def vlm(dtype=torch.float32):
    torch.manual_seed(0)
    vision = {"model_type": "vlm_mamba_patch", "image_size": 16, "patch_size": 8}
    config = VLMambaConfig(vision_config=vision, text_config=text_config(), image_token_id=IMAGE_TOKEN)
    model = ready(VLMambaForConditionalGeneration(config), dtype)
    return model, {"pixel_values": torch.randn(2, 3, 16, 16, dtype=dtype)}


@pytest.fixture
def fused_steps(monkeypatch):
    """The decode steps that ran on the fused path: "logits" where the head ran in the kernel's call, else "stack"."""
    calls = []
    run_step = mamba_decode._run_step

    def counted(model, plan, inputs_embeds, cache, attention_mask, head):
        calls.append("stack" if head is None else "logits")
        return run_step(model, plan, inputs_embeds, cache, attention_mask, head)

    monkeypatch.setattr(mamba_decode, "_run_step", counted)
    return calls


@torch.no_grad()
def step_after_prefill(model, prompt, tokens, step_mask=None):
    """Logits of one decode step of `tokens` (b, 1) after a prefill of `prompt`, and the cache after it."""
    cache = model(prompt, use_cache=True).cache
    output = model(tokens, cache=cache, use_cache=True, attention_mask=step_mask)
    layers = [(layer.conv_states[0].float(), layer.recurrent_states[0]) for layer in cache.layers]
    return output.logits, layers


# The kernel unrolls the conv window for 4 taps (the default) and loops over any other number.
OVERRIDES = [
    {},
    {"use_bias": True, "use_conv_bias": False, "residual_in_fp32": False},
    {"time_step_rank": 9, "conv_kernel": 3},
]


@pytest.mark.parametrize("overrides", OVERRIDES)
@pytest.mark.parametrize("step_mask", [None, [[1], [0], [1]]])
def test_a_fused_step_equals_the_reference_step_and_float64(overrides, step_mask, fused_steps):
    """One step from the same cache: logits and every layer's conv window and state as the fp32 reference step
    (summation order apart) and a float64 one. A padded row (mask 0) leaves its state unchanged, as the reference."""
    model, reference = twins(mamba_lm(**overrides)[0])
    prompt, tokens = torch.randint(3, VOCAB, (3, 7)), torch.randint(3, VOCAB, (3, 1))
    mask = None if step_mask is None else torch.tensor(step_mask)
    logits, layers = step_after_prefill(model, prompt, tokens, mask)
    assert fused_steps, "the step ran on the reference path"
    expected_logits, expected_layers = step_after_prefill(reference, prompt, tokens, mask)
    torch.testing.assert_close(logits, expected_logits, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(layers, expected_layers, atol=2e-5, rtol=1e-5)
    float64_logits, _ = step_after_prefill(reference.double(), prompt, tokens, mask)
    torch.testing.assert_close(logits, float64_logits, atol=1e-4, rtol=1e-4)  # head_logits are float32


@pytest.mark.parametrize("overrides", OVERRIDES[:2])
def test_a_fused_bfloat16_step_rounds_where_the_reference_does(overrides, fused_steps):
    """bfloat16 weights, float32 accumulation and state: the reference's bfloat16 tensors are rounded at the same
    points, so the logits agree to the bit at this size (a longer sum in another order may round a last bit the
    other way: at Mamba-130m's size the reference's own batch-1 and batch-2 tokens part after a few steps)."""
    model, reference = twins(mamba_lm(torch.bfloat16, **overrides)[0])
    prompt, tokens = torch.randint(3, VOCAB, (3, 7)), torch.randint(3, VOCAB, (3, 1))
    logits, layers = step_after_prefill(model, prompt, tokens)
    assert fused_steps
    expected_logits, expected_layers = step_after_prefill(reference, prompt, tokens)
    torch.testing.assert_close(logits, expected_logits, atol=0, rtol=0)
    # The states are float32, but a bfloat16 Δ or x one bit off in the prompt's scan moves them by 2⁻⁸ relative.
    torch.testing.assert_close(layers, expected_layers, atol=1e-3, rtol=2**-5)


GENERATIONS = {
    "greedy": {"do_sample": False},
    "beam": {"do_sample": False, "num_beams": 3},
    "sampling": {"do_sample": True, "top_k": 8},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("family", [mamba_lm, vlm])
@pytest.mark.parametrize("generation", GENERATIONS)
def test_generate_gives_the_reference_tokens(family, generation, dtype, fused_steps):
    """Batched with left padding, every strategy (beam search reorders the cache between fused steps; sampling
    from the same seed), for the LM and VLM-Mamba's language model: the tokens of the reference path."""
    model, extra_inputs = family(dtype)
    model, reference = twins(model)
    opening = [IMAGE_TOKEN] * model.config.image_seq_length if family is vlm else []
    input_ids, mask = left_padded_prompts(opening)
    kwargs = dict(attention_mask=mask, max_new_tokens=8, min_new_tokens=8, **GENERATIONS[generation], **extra_inputs)
    torch.manual_seed(1)
    generated = model.generate(input_ids, **kwargs)
    assert fused_steps, "generate() never ran the fused step"
    assert set(fused_steps) == {"logits"}, "every decode step runs the stack and the head in one call"
    steps = len(fused_steps)
    torch.manual_seed(1)
    expected = reference.generate(input_ids, **kwargs)
    assert len(fused_steps) == steps, "scan_backend='pytorch' must keep the reference step"
    assert torch.equal(generated, expected)


@pytest.mark.skipif(not SUPPORTS_STATE_ROLLBACK, reason=f"state rollback: transformers>={RECURRENT_CACHE_RELEASE}")
def test_speculative_decoding_verifies_on_the_reference_step(monkeypatch):
    """Assisted decoding records the main model's cache for its rollback: the main model keeps the reference path
    and the tokens are plain greedy's."""
    model, draft = mamba_lm()[0], mamba_lm(hidden_size=16, num_hidden_layers=1)[0]
    input_ids = torch.randint(3, VOCAB, (1, 6)).repeat(1, 3)
    expected = model.generate(input_ids, max_new_tokens=10, do_sample=False)
    fused_models = []
    run_step = mamba_decode._run_step
    monkeypatch.setattr(mamba_decode, "_run_step", lambda m, *a: (fused_models.append(m), run_step(m, *a))[1])
    generated = model.generate(input_ids, max_new_tokens=10, do_sample=False, assistant_model=draft)
    assert torch.equal(generated, expected)
    assert model.backbone not in fused_models


def _replace_a_projection(model):
    mixer = model.backbone.layers[0].mixer
    mixer.out_proj = copy.deepcopy(model.backbone.layers[1].mixer.out_proj)


def _swap_a_storage(model):
    weight = model.backbone.layers[1].mixer.in_proj.weight
    weight.data = weight.data * 1.5  # a new storage under the same Parameter, as Module.to() swaps them


def _edit_A_log_in_place(model):
    with torch.no_grad():
        model.backbone.layers[0].mixer.A_log.mul_(0.5)  # the kernel reads a copy of A = -exp(A_log)


def _transpose_a_storage(model):
    weight = model.backbone.layers[1].mixer.x_proj.weight
    weight.data = weight.data.t().contiguous().t()  # the same values, no longer row-major


def _biased_head(model):
    torch.manual_seed(3)  # the same bias in both twins
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
    model.lm_head = head


@pytest.mark.parametrize(
    "edit", [_replace_a_projection, _swap_a_storage, _edit_A_log_in_place, _transpose_a_storage, _biased_head]
)
def test_weights_changed_between_generations_are_what_the_next_one_reads(edit, fused_steps):
    """The fused step keeps the kernel's table of a model's weights and checks it once per generate() call (and at
    every forward outside one): after a projection is replaced, a parameter's storage swapped or laid out otherwise,
    A_log edited in place, or a head with a bias put in, the next call computes with the weights as they are."""
    model, reference = twins(mamba_lm()[0])
    input_ids = torch.randint(3, VOCAB, (2, 5))
    model.generate(input_ids, max_new_tokens=4, do_sample=False)
    assert fused_steps
    edit(model), edit(reference)
    steps = len(fused_steps)
    generated = model.generate(input_ids, max_new_tokens=6, do_sample=False)
    assert len(fused_steps) > steps or edit is _transpose_a_storage  # a transposed layout keeps the reference
    assert torch.equal(generated, reference.generate(input_ids, max_new_tokens=6, do_sample=False))


@torch.no_grad()
def test_a_forward_loop_sees_a_change_between_its_steps(fused_steps):
    """Outside generate() every step checks the table: a hook added between two steps of one cache runs."""
    model, reference = twins(mamba_lm()[0])
    prompt, token = torch.randint(3, VOCAB, (2, 5)), torch.randint(3, VOCAB, (2, 1))
    cache, reference_cache = model(prompt).cache, reference(prompt).cache
    model(token, cache=cache), reference(token, cache=reference_cache)
    assert len(fused_steps) == 1
    seen = []
    model.backbone.layers[0].mixer.in_proj.register_forward_hook(lambda *args: seen.append(1))
    logits = model(token, cache=cache).logits
    assert len(fused_steps) == 1 and seen == [1]
    torch.testing.assert_close(logits, reference(token, cache=reference_cache).logits, atol=2e-5, rtol=1e-5)


def _new_state_tensors(cache):
    """Every layer's conv window and state replaced by changed copies (as beam search's reordering replaces them)."""
    for layer in cache.layers:
        layer.conv_states[0] = layer.conv_states[0].flip(0).contiguous()
        layer.recurrent_states[0] = layer.recurrent_states[0] * 0.5


def _states_edited_in_place(cache):
    for layer in cache.layers:
        layer.conv_states[0].mul_(-1)
        layer.recurrent_states[0].zero_()


def _batch_narrowed(cache):
    """A cache whose states hold one row fewer: the next step of 2 rows is refused, as the reference refuses it."""
    for layer in cache.layers:
        layer.conv_states[0] = layer.conv_states[0][:1].clone()
        layer.recurrent_states[0] = layer.recurrent_states[0][:1].clone()


@torch.no_grad()
@pytest.mark.parametrize("edit", [_new_state_tensors, _states_edited_in_place])
def test_a_cache_changed_between_two_steps_is_what_the_next_step_reads(edit, fused_steps):
    """The kernel's table for a cache is kept on it (`CacheStates`): states replaced or edited in place between two
    steps give the next step the reference's logits and states, and every layer still counts each token."""
    model, reference = twins(mamba_lm()[0])
    prompt, token = torch.randint(3, VOCAB, (2, 5)), torch.randint(3, VOCAB, (2, 1))
    cache, reference_cache = model(prompt).cache, reference(prompt).cache
    model(token, cache=cache), reference(token, cache=reference_cache)
    edit(cache), edit(reference_cache)
    logits = model(token, cache=cache).logits
    assert fused_steps == ["logits"] * 2
    torch.testing.assert_close(logits, reference(token, cache=reference_cache).logits, atol=2e-5, rtol=1e-5)
    states = [(layer.conv_states[0], layer.recurrent_states[0]) for layer in cache.layers]
    expected = [(layer.conv_states[0], layer.recurrent_states[0]) for layer in reference_cache.layers]
    torch.testing.assert_close(states, expected, atol=2e-5, rtol=1e-5)
    if COUNTS_RECURRENT_TOKENS:
        assert int(cache.get_seq_length()) == int(reference_cache.get_seq_length()) == 5 + 2


@torch.no_grad()
def test_a_cache_of_another_batch_is_refused_after_fused_steps(fused_steps):
    model = mamba_lm()[0]
    cache = model(torch.randint(3, VOCAB, (2, 5))).cache
    model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    _batch_narrowed(cache)
    with pytest.raises(RuntimeError):
        model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert fused_steps == ["logits"]


@torch.no_grad()
@pytest.mark.skipif(not COUNTS_RECURRENT_TOKENS, reason=f"token counts: transformers>={RECURRENT_CACHE_RELEASE}")
def test_a_cache_that_counts_its_own_way_is_called_once_per_layer_and_step(fused_steps):
    """Where a cache overrides `increase_count`, the fused step calls it for every layer (transformers' own counting
    is done in one call on all the counters)."""

    class CountingCache(DynamicCache):
        def increase_count(self, layer_idx, state_idx):
            counted.append(layer_idx)
            super().increase_count(layer_idx, state_idx)

    counted = []
    model = mamba_lm()[0]
    cache = CountingCache(config=model.config)
    model(torch.randint(3, VOCAB, (2, 5)), cache=cache)
    counted.clear()
    for _ in range(2):
        model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert fused_steps == ["logits"] * 2 and counted == [0, 1] * 2
    assert int(cache.get_seq_length()) == 7


@torch.no_grad()
@pytest.mark.parametrize("hooked", ["backbone", "embeddings"])
def test_a_hook_on_the_modules_the_fused_call_skips_runs_once(hooked, fused_steps):
    """The causal LM's one-call decode step skips its backbone's module call, and its embeddings' when they have
    hooks: a hook on either keeps the forward (whose stack still runs fused), and the hook runs once per step."""
    model = mamba_lm()[0]
    cache = model(torch.randint(3, VOCAB, (2, 5))).cache
    model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert fused_steps == ["logits"]
    seen = []
    module = model.backbone if hooked == "backbone" else model.backbone.embeddings
    module.register_forward_pre_hook(lambda *args: seen.append(1))
    model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert seen == [1] and fused_steps == ["logits", "stack"]


@torch.no_grad()
def test_a_hook_on_the_vlm_model_keeps_its_forward(fused_steps):
    """VLM-Mamba's one-call decode step skips `model.model`'s module call: a hook there keeps the forward."""
    model, inputs = vlm()
    prompt = torch.tensor([[IMAGE_TOKEN] * model.config.image_seq_length + [5, 6]] * 2)
    cache = model(prompt, **inputs).cache
    model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert fused_steps == ["logits"]
    seen = []
    model.model.register_forward_hook(lambda *args: seen.append(1))
    model(torch.randint(3, VOCAB, (2, 1)), cache=cache)
    assert seen == [1] and fused_steps == ["logits", "stack"]


@torch.no_grad()
def test_a_decode_step_of_the_wrong_shape_is_refused_as_the_forward_refuses_it(fused_steps):
    """The one-call step declines inputs it cannot read (a wrong width, a mask of another batch), and the forward
    raises its error, the cache unchanged."""
    model = mamba_lm()[0]
    cache = model(torch.randint(3, VOCAB, (2, 5))).cache
    states = [layer.recurrent_states[0].clone() for layer in cache.layers]
    with pytest.raises(ValueError, match="inputs_embeds must be"):
        model(inputs_embeds=torch.randn(2, 1, model.config.hidden_size + 3), cache=cache)
    with pytest.raises(ValueError, match="attention_mask must be"):
        model(torch.randint(3, VOCAB, (2, 1)), cache=cache, attention_mask=torch.ones(3, 1, dtype=torch.long))
    assert not fused_steps
    assert all(torch.equal(layer.recurrent_states[0], state) for layer, state in zip(cache.layers, states, strict=True))


def test_lora_wrapped_projections_keep_the_reference_step(fused_steps):
    """A PEFT LoRA layer is not the plain nn.Linear the kernel reads: the step must run through it."""
    model, reference = twins(mamba_lm()[0])
    adapter = LoraConfig(r=4, target_modules=["in_proj", "x_proj"], init_lora_weights=False)
    model, reference = get_peft_model(model, adapter), get_peft_model(reference, copy.deepcopy(adapter))
    reference.load_state_dict(model.state_dict())
    input_ids = torch.randint(3, VOCAB, (2, 5))
    generated = model.generate(input_ids=input_ids, max_new_tokens=6, do_sample=False)
    assert not fused_steps
    assert torch.equal(generated, reference.generate(input_ids=input_ids, max_new_tokens=6, do_sample=False))


def test_a_forward_hook_keeps_the_reference_step(fused_steps):
    model = mamba_lm()[0]
    seen = []
    model.backbone.layers[1].mixer.x_proj.register_forward_hook(lambda *args: seen.append(1))
    model.generate(torch.randint(3, VOCAB, (1, 5)), max_new_tokens=4, do_sample=False)
    assert not fused_steps and len(seen) == 4  # the prompt and three decode steps


def test_without_the_kernel_the_reference_step_runs(fused_steps, monkeypatch):
    model, reference = twins(mamba_lm()[0])
    input_ids = torch.randint(3, VOCAB, (2, 5))
    monkeypatch.setattr(ssm_cpu, "load", lambda: None)
    generated = model.generate(input_ids, max_new_tokens=6, do_sample=False)
    assert not fused_steps
    assert torch.equal(generated, reference.generate(input_ids, max_new_tokens=6, do_sample=False))


def test_other_dtypes_hidden_states_and_autograd_keep_the_reference_step(fused_steps):
    model = mamba_lm()[0]
    prompt, token = torch.randint(3, VOCAB, (2, 5)), torch.randint(3, VOCAB, (2, 1))
    cache = model(prompt, use_cache=True).cache
    model(token, cache=cache, use_cache=True)  # autograd on: the step is read-then-replace, not in place
    with torch.no_grad():
        output = model(token, cache=cache, use_cache=True, output_hidden_states=True)
        assert len(output.hidden_states) == model.config.num_hidden_layers + 1
        half = copy.deepcopy(model).half()
        half(token, cache=half(prompt, use_cache=True).cache, use_cache=True)
    assert not fused_steps


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 3, 5])
def test_the_head_gemv_equals_torch(dtype, rows):
    """`fused_linear` (the LM head in generation) against torch's product, with a bias and a width that leaves a
    remainder after the vector loop: float32 up to the summation order, bfloat16 up to a last-bit rounding."""
    linear = torch.nn.Linear(45, 70).to(dtype)
    inputs = torch.randn(rows, 1, 45).to(dtype)
    with torch.no_grad():
        got, expected = mamba_decode.fused_linear(linear, inputs), linear(inputs).float()
    assert got is not None and got.shape == (rows, 1, 70)
    tolerance = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-2, "rtol": 8e-3}
    torch.testing.assert_close(got, expected, **tolerance)
    assert mamba_decode.fused_linear(linear, inputs, backend="pytorch") is None
    assert mamba_decode.fused_linear(linear, inputs) is None  # autograd on: torch's product
