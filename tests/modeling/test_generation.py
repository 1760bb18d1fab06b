"""generate() of every model that generates, against references that involve no cache.

A loop of full forwards (the whole sequence every step, `use_cache=False`) cannot share a bug with the cache or with
how transformers' `generate()` hands the cache to the model: in 5.24 it renamed the cache argument, the model lost
its state at every step, and a comparison of batched with one-by-one generation still passed because both were wrong.
A family that generates adds one entry to `GENERATING_MODELS`.
"""

import pytest
import torch
import transformers
from transformers import DynamicCache, MambaConfig
from transformers.modeling_utils import ModuleUtilsMixin

from mamba_multimodal import MambaForCausalLM, VLMambaConfig, VLMambaForConditionalGeneration
from mamba_multimodal.modeling.cache_utils import (
    COUNTS_RECURRENT_TOKENS,
    RECURRENT_CACHE_RELEASE,
    SUPPORTS_STATE_ROLLBACK,
    TAKES_CACHE_ARGUMENT,
    first_parameter,
)

VOCAB = 64
NEW_TOKENS = 8
IMAGE_TOKEN = VOCAB - 1  # the VLMs' <image>; text tokens are drawn below it


def text_config(hidden_size=32, num_hidden_layers=2):
    return MambaConfig(
        vocab_size=VOCAB, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, state_size=8, conv_kernel=4,
        expand=2, pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, use_mambapy=False,
    )  # fmt: skip


def ready_for_comparison(model):
    """Eval mode, larger Δ and A than the init (so that the state matters), always NEW_TOKENS new tokens."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("A_log", "dt_proj.bias", "conv1d.weight")):
                parameter.add_(torch.randn_like(parameter) * 0.5)
    model.generation_config.eos_token_id = None
    return model.eval()


def mamba_lm(draft=False):
    """(model, extra inputs for every forward, tokens that open every prompt). draft: a smaller model of the same
    family and vocabulary, as an assistant for speculative decoding."""
    config = text_config(16, 1) if draft else text_config()
    return ready_for_comparison(MambaForCausalLM(config)), {}, []


def vlm(vision_config):
    def build(draft=False):
        language = text_config(16, 1) if draft else text_config()
        config = VLMambaConfig(vision_config=vision_config, text_config=language, image_token_id=IMAGE_TOKEN)
        model = ready_for_comparison(VLMambaForConditionalGeneration(config))
        pixel_values = torch.randn(2, 3, 16, 16)
        return model, {"pixel_values": pixel_values}, [IMAGE_TOKEN] * config.image_seq_length

    return build


GENERATING_MODELS = {
    "mamba-lm": mamba_lm,
    "vlm-mamba": vlm({"model_type": "vision_mamba", "image_size": 16, "patch_size": 8, "hidden_size": 16,
                      "num_hidden_layers": 1, "state_size": 4}),
    "vlm-mamba-patch": vlm({"model_type": "vlm_mamba_patch", "image_size": 16, "patch_size": 8}),
}  # fmt: skip


def left_padded_prompts(opening=(), lengths=(4, 9)):
    """(b, width) token ids and mask: `opening` (a VLM's image tokens) then `length` random text tokens per row,
    left-padded with pad id 0."""
    rows = [torch.tensor([*opening, *torch.randint(3, IMAGE_TOKEN, (length,)).tolist()]) for length in lengths]
    width = max(len(row) for row in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = row
        mask[i, width - len(row) :] = 1
    return input_ids, mask


@torch.no_grad()
def greedy_by_full_forwards(model, input_ids, attention_mask, extra_inputs, new_tokens=NEW_TOKENS):
    """Greedy decoding by re-running the whole sequence every step: no cache anywhere. A VLM never emits its image
    placeholder (an input-only token)."""
    for _ in range(new_tokens):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra_inputs).logits
        if "pixel_values" in extra_inputs:
            logits[..., IMAGE_TOKEN] = -float("inf")
        next_token = logits[:, -1].argmax(-1, keepdim=True)
        input_ids = torch.cat([input_ids, next_token], dim=1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(next_token)], dim=1)
    return input_ids


@pytest.mark.parametrize("family", GENERATING_MODELS)
def test_greedy_generate_equals_a_loop_of_full_forwards(family):
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask = left_padded_prompts(opening)
    expected = greedy_by_full_forwards(model, input_ids, mask, extra_inputs)
    generated = model.generate(
        input_ids=input_ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False, **extra_inputs
    )
    assert torch.equal(generated, expected)
    assert len(set(generated[:, -NEW_TOKENS:].flatten().tolist())) > 2, "a degenerate continuation proves little"


@pytest.mark.parametrize("family", GENERATING_MODELS)
@pytest.mark.parametrize("strategy", [{"num_beams": 3}, {"do_sample": True, "top_k": 20}])
def test_beam_search_and_sampling_with_the_cache_equal_them_without(family, strategy):
    """Without a cache, generate() feeds the whole sequence every step, so the cache's reorder (beams) and the state
    carried from step to step (sampling with a fixed seed) are checked against full forwards."""
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask = left_padded_prompts(opening)
    kwargs = dict(input_ids=input_ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False)
    kwargs.update(**strategy, **extra_inputs)
    torch.manual_seed(3)
    expected = model.generate(use_cache=False, **kwargs)
    torch.manual_seed(3)
    assert torch.equal(model.generate(use_cache=True, **kwargs), expected)


@pytest.mark.parametrize("family", GENERATING_MODELS)
def test_the_returned_cache_continues_like_the_full_forward(family):
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask = left_padded_prompts(opening)
    following = torch.randint(3, IMAGE_TOKEN, (input_ids.shape[0], 5))
    with torch.no_grad():
        prompt = model(input_ids=input_ids, attention_mask=mask, use_cache=True, **extra_inputs)
        assert prompt.cache is not None
        continued = model(input_ids=following, cache=prompt.cache, use_cache=True).logits
        full = model(
            input_ids=torch.cat([input_ids, following], 1),
            attention_mask=torch.cat([mask, torch.ones_like(following)], 1),
            use_cache=False,
            **extra_inputs,
        ).logits
    torch.testing.assert_close(continued, full[:, -following.shape[1] :], atol=1e-4, rtol=0)


def repetitive_prompt(opening, extra_inputs):
    """One left-padded row (b = 1: transformers' assisted decoding takes no batch) whose text repeats a phrase, so
    that prompt lookup finds drafts, with its image when the model has one."""
    phrase = torch.randint(3, IMAGE_TOKEN, (5,)).tolist()
    row = torch.tensor(opening + phrase * 3)
    input_ids = torch.cat([torch.zeros(1, 2, dtype=torch.long), row[None]], dim=1)
    mask = (torch.arange(input_ids.shape[1]) >= 2).long()[None]
    return input_ids, mask, {name: value[:1] for name, value in extra_inputs.items()}


SPECULATIVE = {
    "prompt-lookup-3": lambda draft: {"prompt_lookup_num_tokens": 3},
    "prompt-lookup-5": lambda draft: {"prompt_lookup_num_tokens": 5},
    "draft-model": lambda draft: {"assistant_model": draft, "num_assistant_tokens": 4},
    "draft-model-adaptive": lambda draft: {
        "assistant_model": draft, "num_assistant_tokens": 2, "num_assistant_tokens_schedule": "heuristic"
    },
}  # fmt: skip


@pytest.mark.skipif(not SUPPORTS_STATE_ROLLBACK, reason=f"state rollback: transformers>={RECURRENT_CACHE_RELEASE}")
@pytest.mark.parametrize("family", GENERATING_MODELS)
@pytest.mark.parametrize("strategy", SPECULATIVE)
def test_speculative_decoding_equals_a_loop_of_full_forwards(family, strategy, monkeypatch):
    """Drafted tokens are verified in one pass and the rejected ones cropped off the cache: the state must roll back
    to the last accepted token exactly. Over several seeds, every crop length from 0 to all drafts occurs (a prefill
    whose drafts are all rejected is where keeping only k states goes wrong)."""
    crops = []
    crop = DynamicCache.crop
    monkeypatch.setattr(DynamicCache, "crop", lambda cache, n: (crops.append(-n), crop(cache, n))[1])
    for seed in range(4):
        torch.manual_seed(seed)
        model, extra_inputs, opening = GENERATING_MODELS[family]()
        draft = GENERATING_MODELS[family](draft=True)[0]
        input_ids, mask, extra_inputs = repetitive_prompt(opening, extra_inputs)
        expected = greedy_by_full_forwards(model, input_ids, mask, extra_inputs, new_tokens=2 * NEW_TOKENS)
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_new_tokens=2 * NEW_TOKENS,
            do_sample=False,
            **SPECULATIVE[strategy](draft),
            **extra_inputs,
        )
        assert torch.equal(generated, expected), f"seed {seed}"
    assert max(crops) > 0, "no draft was ever rejected: the rollback went untested"
    assert 0 in crops, "no draft was ever accepted"


@pytest.mark.skipif(SUPPORTS_STATE_ROLLBACK, reason=f"transformers>={RECURRENT_CACHE_RELEASE} rolls the state back")
@pytest.mark.parametrize("family", GENERATING_MODELS)
def test_speculative_decoding_before_the_rollback_release_names_it(family):
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask, extra_inputs = repetitive_prompt(opening, extra_inputs)
    with pytest.raises(ValueError, match=rf"transformers>={RECURRENT_CACHE_RELEASE}.*{transformers.__version__}"):
        model.generate(input_ids=input_ids, attention_mask=mask, prompt_lookup_num_tokens=3, **extra_inputs)


def generate_and_return_the_cache(model, input_ids, mask, extra_inputs):
    first = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        return_dict_in_generate=True,
        **extra_inputs,
    )
    return first.sequences, first.cache if "cache" in first else first.past_key_values  # the name before 5.24


@pytest.mark.skipif(not COUNTS_RECURRENT_TOKENS, reason=f"token count: transformers>={RECURRENT_CACHE_RELEASE}")
@pytest.mark.parametrize("family", GENERATING_MODELS)
def test_generation_continues_from_the_returned_cache(family):
    """8 new tokens, then 8 more from the returned cache (the whole sequence and its mask passed back, as a chat
    continues; a VLM's image lives in the state), give the 16 of one loop of full forwards, and the cache counts
    every token it has seen."""
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask = left_padded_prompts(opening)
    expected = greedy_by_full_forwards(model, input_ids, mask, extra_inputs, new_tokens=2 * NEW_TOKENS)
    sequences, cache = generate_and_return_the_cache(model, input_ids, mask, extra_inputs)
    assert int(cache.get_seq_length()) == sequences.shape[1] - 1  # the last generated token is not fed yet
    mask = torch.cat([mask, torch.ones(mask.shape[0], NEW_TOKENS, dtype=mask.dtype)], dim=1)
    continued = model.generate(
        input_ids=sequences, attention_mask=mask, cache=cache, max_new_tokens=NEW_TOKENS, do_sample=False
    )
    assert torch.equal(continued, expected)
    assert int(cache.get_seq_length()) == continued.shape[1] - 1


@pytest.mark.skipif(COUNTS_RECURRENT_TOKENS, reason=f"transformers>={RECURRENT_CACHE_RELEASE} counts the tokens")
@pytest.mark.parametrize("name", ["cache", "cache_params", "past_key_values"])
def test_continuing_from_a_cache_before_the_counting_release_names_it(name):
    model, extra_inputs, opening = mamba_lm()
    input_ids, mask = left_padded_prompts(opening)
    sequences, cache = generate_and_return_the_cache(model, input_ids, mask, extra_inputs)
    expected = (
        rf"a cache \((cache|{name})=\).*transformers>={RECURRENT_CACHE_RELEASE}.*without the cache"  # 5.24 renames
    )
    with pytest.raises(ValueError, match=expected):
        model.generate(input_ids=sequences, max_new_tokens=2, **{name: cache})


@pytest.mark.skipif(not TAKES_CACHE_ARGUMENT, reason="generate() takes a cache from transformers 5.24")
@pytest.mark.parametrize("family", GENERATING_MODELS)
def test_a_fresh_cache_passed_to_generate_is_filled_like_its_own(family):
    """An empty `DynamicCache` handed to generate() is not a continuation (5.24 too)."""
    model, extra_inputs, opening = GENERATING_MODELS[family]()
    input_ids, mask = left_padded_prompts(opening)
    expected = greedy_by_full_forwards(model, input_ids, mask, extra_inputs)
    generated = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        cache=DynamicCache(config=model.config.get_text_config(decoder=True)),
        **extra_inputs,
    )
    assert torch.equal(generated, expected)


@pytest.mark.skipif(TAKES_CACHE_ARGUMENT, reason="generate() takes a cache from transformers 5.24")
def test_a_cache_passed_to_generate_before_5_24_is_refused_naming_it():
    model, _, opening = mamba_lm()
    input_ids, _ = left_padded_prompts(opening)
    with pytest.raises(ValueError, match=r"makes the cache itself and takes none \(cache=\).*5\.24"):
        model.generate(input_ids=input_ids, max_new_tokens=2, cache=DynamicCache(config=model.config))


# ------------------------------------------------------------------------------------------------ device and dtype
@pytest.mark.parametrize("family", ["lm", "vlm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_device_and_dtype_are_transformers(family, dtype):
    """The generation models read their device and dtype without `parameters()` (generate() reads the device twice
    a token): the same answers as transformers' properties, after a cast too."""
    vision = {"model_type": "vlm_mamba_patch", "image_size": 16, "patch_size": 8}
    model = mamba_lm()[0] if family == "lm" else vlm(vision)()[0]
    model.to(dtype)
    assert model.device == ModuleUtilsMixin.device.fget(model) == torch.device("cpu")
    assert model.dtype == ModuleUtilsMixin.dtype.fget(model) == dtype


def test_first_parameter_is_the_first_of_parameters():
    """Depth first in `named_modules()`'s order, a shared module and a None parameter skipped, floating filtered."""
    shared = torch.nn.Linear(2, 2)
    tree = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Identity(), shared), shared)
    tree[0].register_parameter("bias", None)
    assert first_parameter(tree) is next(tree.parameters()) is shared.weight
    counts = torch.nn.Module()
    counts.steps = torch.nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)
    counts.child = torch.nn.Linear(2, 2)
    assert first_parameter(counts) is counts.steps
    assert first_parameter(counts, floating=True) is counts.child.weight
    assert first_parameter(torch.nn.ReLU()) is None
