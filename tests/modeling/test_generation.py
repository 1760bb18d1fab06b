"""generate() of every model that generates, against references that involve no cache.

A loop of full forwards (the whole sequence every step, `use_cache=False`) cannot share a bug with the cache or with
how transformers' `generate()` hands the cache to the model: in 5.24 it renamed the cache argument, the model lost
its state at every step, and a comparison of batched with one-by-one generation still passed because both were wrong.
A family that generates adds one entry to `GENERATING_MODELS`.
"""

import pytest
import torch
from transformers import MambaConfig

from mamba_multimodal import MambaForCausalLM, VLMambaConfig, VLMambaForConditionalGeneration

VOCAB = 64
NEW_TOKENS = 8
IMAGE_TOKEN = VOCAB - 1  # the VLMs' <image>; text tokens are drawn below it


def text_config():
    return MambaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, state_size=8, conv_kernel=4, expand=2,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, use_mambapy=False,
    )  # fmt: skip


def ready_for_comparison(model):
    """Eval mode, larger Δ and A than the init (so that the state matters), always NEW_TOKENS new tokens."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("A_log", "dt_proj.bias", "conv1d.weight")):
                parameter.add_(torch.randn_like(parameter) * 0.5)
    model.generation_config.eos_token_id = None
    return model.eval()


def mamba_lm():
    """(model, extra inputs for every forward, tokens that open every prompt)."""
    return ready_for_comparison(MambaForCausalLM(text_config())), {}, []


def vlm(vision_config):
    def build():
        config = VLMambaConfig(vision_config=vision_config, text_config=text_config(), image_token_id=IMAGE_TOKEN)
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


def left_padded_prompts(opening, lengths=(4, 9)):
    """(b, width) token ids and mask: `opening` (a VLM's image tokens) then `length` random text tokens per row,
    left-padded with pad id 0."""
    rows = [torch.tensor(opening + torch.randint(3, IMAGE_TOKEN, (length,)).tolist()) for length in lengths]
    width = max(len(row) for row in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = row
        mask[i, width - len(row) :] = 1
    return input_ids, mask


@torch.no_grad()
def greedy_by_full_forwards(model, input_ids, attention_mask, extra_inputs, new_tokens=NEW_TOKENS):
    """Greedy decoding by re-running the whole sequence every step: no cache anywhere."""
    for _ in range(new_tokens):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra_inputs).logits
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
