"""Coupled Mamba models: Eq. 6 written out, parallel == streaming, padding, coupling, gradients through a cache,
losses. The checks every family shares (save/load, Auto, gradients, checkpointing, backends) are in test_families.py."""

import pytest
import torch
import torch.nn.functional as F

from mamba_multimodal import (
    CoupledMambaCache,
    CoupledMambaConfig,
    CoupledMambaForSequenceClassification,
    CoupledMambaModel,
)
from mamba_multimodal.modeling.streaming_coupled_mamba import time_pieces

COUPLINGS = ("sum", "mean", "none")
SIZES = {"text": 12, "audio": 5, "vision": 3}
ATOL = 1e-5  # float32


class CoupledMambaTester:
    """transformers' ModelTester pattern: a tiny config and inputs for it."""

    def __init__(self, batch_size=2, length=9):
        self.batch_size, self.length = batch_size, length

    @staticmethod
    def get_config(**overrides):
        settings = {"hidden_size": 16, "state_size": 4, "num_hidden_layers": 2, "head_hidden_size": 8, **overrides}
        return CoupledMambaConfig(input_sizes=SIZES, **settings)

    def prepare_inputs(self, batch_size=None, length=None) -> dict:
        shape = (batch_size or self.batch_size, length or self.length)
        return {f"{m}_features": torch.randn(*shape, size) for m, size in SIZES.items()}


def build(model_class=CoupledMambaForSequenceClassification, **overrides):
    return model_class(CoupledMambaTester.get_config(**overrides)).eval()


def masks_for(inputs: dict, mask: torch.Tensor) -> dict:
    return {name.replace("_features", "_attention_mask"): mask for name in inputs}


def steps(inputs: dict, start: int, stop: int) -> dict:
    return {name: value[:, start:stop] for name, value in inputs.items()}


# ------------------------------------------------------------------------------- Eq. 6, written out
def causal_conv(x, conv):
    """x (b, l, d_in) through the depthwise conv, written out: out_t = bias + Σ_i w_i x_{t-k+1+i}."""
    kernel = conv.weight.shape[-1]
    padded = F.pad(x, (0, 0, kernel - 1, 0))
    out = sum(conv.weight[:, 0, i] * padded[:, i : i + x.shape[1]] for i in range(kernel))
    return out + (conv.bias if conv.bias is not None else 0)


def literal_forward(model: CoupledMambaForSequenceClassification, inputs: dict, masks: dict | None = None):
    """The classifier with plain tensor algebra and a per-step loop of Eq. 6 (no ssm.py). Padded steps of a modality
    get x = 0 and Δ = 0, so exp(Δ A) = 1: the modality hands the coupled state on (see the model's docstring)."""
    config, core = model.config, model.model
    names, coupling, n = config.modalities, config.coupling, config.state_size
    real = {m: torch.ones(inputs[f"{m}_features"].shape[:2]) if masks is None else masks[m].float() for m in names}
    hidden = {}
    for m in names:
        projection = core.input_projections[m]
        projected = inputs[f"{m}_features"] @ projection.projection.weight.T + projection.projection.bias
        hidden[m] = F.layer_norm(projected, (config.hidden_size,), projection.norm.weight, projection.norm.bias)
    for layer in core.layers:
        x, z, delta, B, C, A, D = {}, {}, {}, {}, {}, {}, {}
        for m in names:
            block, mixer = layer.blocks[m], layer.blocks[m].mixer
            normed = F.layer_norm(hidden[m], (config.hidden_size,), block.norm.weight, block.norm.bias)
            x_m, z[m] = (normed @ mixer.in_proj.weight.T).chunk(2, dim=-1)  #                       (b, l, d_in)
            x[m] = F.silu(causal_conv(x_m * real[m][..., None], mixer.conv1d)) * real[m][..., None]
            dt, B[m], C[m] = (x[m] @ mixer.x_proj.weight.T).split([config.time_step_rank, n, n], dim=-1)
            delta[m] = F.softplus(dt @ mixer.dt_proj.weight.T + mixer.dt_proj.bias) * real[m][..., None]
            A[m], D[m] = -torch.exp(mixer.A_log), mixer.D
        batch, length, inner = x[names[0]].shape
        carried = {m: torch.zeros(batch, inner, n) for m in names}  # c_{t-1} as each modality sees it
        y = {m: [] for m in names}
        for t in range(length):
            states = {}
            for m in names:  # h^m_t = exp(Δ^m_t A^m) ⊙ c_{t-1} + Δ^m_t B^m_t x^m_t
                decay = torch.exp(delta[m][:, t, :, None] * A[m])
                states[m] = decay * carried[m] + delta[m][:, t, :, None] * B[m][:, t, None, :] * x[m][:, t, :, None]
                y[m].append((states[m] * C[m][:, t, None, :]).sum(-1) + D[m] * x[m][:, t])
            total = sum(states.values())
            for m in names:
                carried[m] = {"sum": total, "mean": total / len(names), "none": states[m]}[coupling]
        for m in names:
            gated = torch.stack(y[m], dim=1) * F.silu(z[m])
            hidden[m] = hidden[m] + (gated @ layer.blocks[m].mixer.out_proj.weight.T) * real[m][..., None]
    pooled = []
    for m in names:
        final = core.final_norms[m]
        normed = F.layer_norm(hidden[m], (config.hidden_size,), final.weight, final.bias)
        pooled.append((normed * real[m][..., None]).sum(1) / real[m].sum(1, keepdim=True))
    head = model.classifier
    hidden_head = F.gelu(torch.cat(pooled, dim=-1) @ head.dense.weight.T + head.dense.bias)  # head_activation
    return hidden_head @ head.output.weight.T + head.output.bias


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_the_model_is_eq6_written_out(coupling):
    """coupling="sum" is Eq. 6 exactly; "mean" and "none" differ only in the carried state."""
    model = build(coupling=coupling)
    inputs = CoupledMambaTester(length=7).prepare_inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, literal_forward(model, inputs), atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("coupling", COUPLINGS)
def test_a_modality_padded_alone_hands_the_coupled_state_on(coupling):
    model = build(coupling=coupling)
    inputs = CoupledMambaTester(length=7).prepare_inputs()
    masks = {m: torch.ones(2, 7, dtype=torch.bool) for m in SIZES}
    masks["audio"][0, 2:4] = False  # audio misses two observations of clip 0, the others do not
    masks["vision"][1, 5] = False
    named_masks = {f"{m}_attention_mask": mask for m, mask in masks.items()}
    with torch.no_grad():
        logits = model(**inputs, **named_masks).logits
        torch.testing.assert_close(logits, literal_forward(model, inputs, masks), atol=ATOL, rtol=1e-5)
        inputs["audio_features"][0, 2:4] = 100.0  # what a padded step holds does not matter
        torch.testing.assert_close(model(**inputs, **named_masks).logits, logits, atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------- parallel == streaming
@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_streaming_one_step_at_a_time_equals_the_parallel_pass(coupling, pooling):
    model = build(coupling=coupling, pooling=pooling, fusion="weighted")
    inputs = CoupledMambaTester(length=10).prepare_inputs()
    with torch.no_grad():
        full = model(**inputs, output_hidden_states=True)
        prefix = model(**steps(inputs, 0, 4), use_cache=True, output_hidden_states=True)  # parallel prefill
        streamed = [prefix.hidden_states[-1]]
        for t in range(4, 10):
            out = model(**steps(inputs, t, t + 1), cache=prefix.cache, output_hidden_states=True)
            streamed.append(out.hidden_states[-1])
            torch.testing.assert_close(out.logits, model(**steps(inputs, 0, t + 1)).logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.cat(streamed, dim=2), full.hidden_states[-1], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.logits, full.logits, atol=ATOL, rtol=0)
    assert prefix.cache.seen_steps == 10


def test_streaming_from_an_empty_cache_and_several_steps_per_call():
    model = build(coupling="sum")
    inputs = CoupledMambaTester(length=8).prepare_inputs()
    cache = CoupledMambaCache(model.config, batch_size=2)
    with torch.no_grad():
        expected = model.model(**inputs).last_hidden_state
        first = model.model(**steps(inputs, 0, 1), cache=cache).last_hidden_state  # a parallel pass of 1
        rest = model.model(**steps(inputs, 1, 8), cache=cache).last_hidden_state  # 7 steps in parallel
    torch.testing.assert_close(torch.cat([first, rest], dim=2), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("padding", [None, "right", "inside"])
def test_inference_in_pieces_equals_one_pass(coupling, padding):
    """inference_chunk_tokens=6 runs 2 clips of 11 steps as 3 + 3 + 3 + 2 through a carried cache: every depth's
    hidden states, the logits and the cache left behind are those of one pass."""
    inputs = CoupledMambaTester(length=11).prepare_inputs()
    masks = {}
    if padding is not None:
        mask = torch.ones(2, 11, dtype=torch.long)
        mask[1, 7:] = 0  # clip 1 ends early: right padding
        if padding == "inside":
            mask[0, 4:6] = 0  # steps where every modality is padded, inside clip 0
            mask[1, 2] = 0
        masks = masks_for(inputs, mask)
    model, outputs = build(coupling=coupling), {}
    for chunk in (None, 6):
        model.config.inference_chunk_tokens = chunk
        with torch.no_grad():
            outputs[chunk] = model(**inputs, **masks, use_cache=True, output_hidden_states=True)
    whole, pieces = outputs[None], outputs[6]
    for depth, (expected, got) in enumerate(zip(whole.hidden_states, pieces.hidden_states, strict=True)):
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0, msg=f"depth {depth}")
    torch.testing.assert_close(pieces.logits, whole.logits, atol=ATOL, rtol=0)
    for name in ("ssm_states", "conv_states"):
        for expected, got in zip(getattr(whole.cache, name), getattr(pieces.cache, name), strict=True):
            # Eq. 6's sum grows the carried state (to ~60 here, where float32's ulp is 4e-6): relative as well
            torch.testing.assert_close(got, expected, atol=ATOL, rtol=1.3e-6, msg=name)


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_pooling_piece_by_piece_without_the_output_equals_pooling_the_output(pooling):
    model = build(CoupledMambaModel, pooling=pooling, inference_chunk_tokens=6)
    inputs = CoupledMambaTester(length=11).prepare_inputs()
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[0, 4:6], mask[1, 8:] = 0, 0
    with torch.no_grad():
        kept = model(**inputs, **masks_for(inputs, mask))
        model.config.inference_chunk_tokens = None
        whole = model(**inputs, **masks_for(inputs, mask))
        model.config.inference_chunk_tokens = 6
        pooled_only = model(**inputs, **masks_for(inputs, mask), output_last_hidden_state=False)
    assert pooled_only.last_hidden_state is None and kept.last_hidden_state.shape == (2, 3, 11, 16)
    for out in (kept, pooled_only):
        torch.testing.assert_close(out.modality_pooler_output, whole.modality_pooler_output, atol=ATOL, rtol=0)
        torch.testing.assert_close(out.pooler_output, whole.pooler_output, atol=ATOL, rtol=0)


def test_a_bfloat16_model_takes_float32_features_and_answers_in_bfloat16():
    model = build(CoupledMambaModel, inference_chunk_tokens=6)
    inputs = CoupledMambaTester(length=11).prepare_inputs()  # float32, as a processor gives them
    with torch.no_grad():
        expected = model(**inputs).pooler_output
        model.to(torch.bfloat16)
        out = model(**inputs, use_cache=True)
    assert out.pooler_output.dtype == out.last_hidden_state.dtype == torch.bfloat16
    assert out.cache.conv_states[0].dtype == torch.bfloat16
    assert out.cache.ssm_states[0].dtype == torch.float32  # the scan accumulates in float32
    torch.testing.assert_close(out.pooler_output.float(), expected, atol=0.1, rtol=0.05)


def test_pieces_hold_the_token_budget_and_are_used_only_without_autograd():
    model = build(inference_chunk_tokens=8)

    def lengths(batch, length):
        pieces = time_pieces(batch, length, model.config.inference_chunk_tokens)
        return [len(range(length)[piece]) for piece in pieces]

    assert lengths(2, 11) == [11]  # gradients recorded: one piece
    with torch.no_grad():
        assert lengths(2, 11) == [4, 4, 3]  # 8 positions = 2 clips x 4 steps
        assert lengths(1, 11) == [8, 3]
        assert lengths(16, 3) == [1, 1, 1]  # at least one step
        model.config.inference_chunk_tokens = None
        assert lengths(2, 11) == [11]


def test_continuing_a_cache_with_several_steps_runs_in_parallel(monkeypatch):
    model = build(coupling="sum")
    inputs = CoupledMambaTester(length=9).prepare_inputs()

    def no_stepping(*args, **kwargs):
        raise AssertionError("a continuation without fully padded steps must not go one step at a time")

    monkeypatch.setattr(type(model.model.layers[0]), "step", no_stepping)
    with torch.no_grad():
        expected = model(**inputs)
        prefix = model(**steps(inputs, 0, 4), use_cache=True)
        continued = model(**steps(inputs, 4, 9), cache=prefix.cache)
    torch.testing.assert_close(continued.logits, expected.logits, atol=ATOL, rtol=0)


def test_gradients_flow_through_a_continued_cache():
    """The gradient of the logits after prefix + continuation, w.r.t. every input step, equals the one pass's:
    the continuation's scan carries the gradient back into the prefix's state."""
    model = build(coupling="mean")
    inputs = CoupledMambaTester(length=8).prepare_inputs()
    whole = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    model(**whole).logits.sum().backward()
    pieces = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    prefix = model(**steps(pieces, 0, 3), use_cache=True)
    model(**steps(pieces, 3, 8), cache=prefix.cache).logits.sum().backward()
    for name in inputs:
        torch.testing.assert_close(pieces[name].grad, whole[name].grad, atol=ATOL, rtol=1e-4, msg=name)


def test_gradients_reach_the_returned_hidden_states():
    """As transformers' models: `hidden_states` are the tensors the layers take, so their gradient is the one from
    running the later layers again from a leaf copy of them."""
    model = build(CoupledMambaModel, num_hidden_layers=3).train()
    out = model(**CoupledMambaTester().prepare_inputs(), output_hidden_states=True)
    for hidden in out.hidden_states:
        hidden.retain_grad()
    out.last_hidden_state.sum().backward()
    leaf = out.hidden_states[1].detach().requires_grad_()
    hidden = leaf
    for layer in model.layers[1:]:
        hidden = layer(hidden)
    norms = model.final_norms.values()
    torch.stack([norm(h) for norm, h in zip(norms, hidden.unbind(1), strict=True)], dim=1).sum().backward()
    assert all(hidden.grad is not None for hidden in out.hidden_states)
    torch.testing.assert_close(out.hidden_states[1].grad, leaf.grad, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("where", ["right", "left", "inside"])
def test_steps_where_every_modality_is_padded_do_not_exist(coupling, where):
    """Same logits as the unpadded clip, in parallel and streamed, whatever the padded steps hold (also under "sum",
    whose state a padded step would otherwise multiply by M)."""
    model = build(coupling=coupling)
    inputs = CoupledMambaTester(batch_size=1, length=6).prepare_inputs()
    real_steps = {"right": [0, 1, 2, 3, 4, 5], "left": [30, 31, 32, 33, 34, 35], "inside": [0, 1, 7, 8, 20, 35]}[where]
    padded = {name: 50 * torch.randn(1, 36, value.shape[-1]) for name, value in inputs.items()}
    mask = torch.zeros(1, 36, dtype=torch.long)
    mask[0, real_steps] = 1
    for name, value in inputs.items():
        padded[name][0, real_steps] = value[0]
    cache = CoupledMambaCache(model.config, batch_size=1)
    with torch.no_grad():
        expected = model(**inputs).logits
        parallel = model(**padded, **masks_for(padded, mask), output_hidden_states=True)
        for t in range(36):
            streamed = model(**steps(padded, t, t + 1), **masks_for(padded, mask[:, t : t + 1]), cache=cache)
        unpadded = model(**inputs, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(parallel.logits, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(streamed.logits, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(parallel.hidden_states[-1][:, :, real_steps], unpadded, atol=ATOL, rtol=0)


def test_a_batch_of_clips_of_different_lengths_equals_each_clip_alone():
    model = build()
    inputs = CoupledMambaTester(batch_size=3, length=8).prepare_inputs()
    lengths = [8, 5, 2]
    mask = torch.tensor([[1] * n + [0] * (8 - n) for n in lengths])
    with torch.no_grad():
        batched = model(**inputs, **masks_for(inputs, mask)).logits
        alone = torch.cat([model(**{k: v[i : i + 1, :n] for k, v in inputs.items()}).logits for i, n in
                           enumerate(lengths)])  # fmt: skip
    torch.testing.assert_close(batched, alone, atol=ATOL, rtol=0)


# -------------------------------------------------------------------------------------------- coupling
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_coupling_carries_one_modalitys_past_into_anothers_output(coupling):
    """d text output at step 6 / d audio input at step 2: non-zero exactly when the states are coupled."""
    model = build(CoupledMambaModel, coupling=coupling, num_hidden_layers=1)
    inputs = CoupledMambaTester(batch_size=1, length=8).prepare_inputs()
    inputs["audio_features"].requires_grad_(True)
    readout = torch.randn(16)  # a plain sum of a LayerNorm output has no gradient at all
    text_output = model(**inputs).last_hidden_state[0, 0] @ readout  #                                  (l,)
    (grad,) = torch.autograd.grad(text_output[6], inputs["audio_features"])
    influence = grad[0].abs().sum(-1)  #                                                               (l,)
    assert influence[7] == 0  # causal
    if coupling == "none":
        assert influence.sum() == 0
    else:
        assert influence[2] > 1e-6
    (own,) = torch.autograd.grad(model(**inputs).last_hidden_state[0, 1, 6] @ readout, inputs["audio_features"])
    assert own[0, 2].abs().sum() > 1e-6  # audio's own past always reaches audio's output


# ------------------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize(
    ("overrides", "labels", "reference"),
    [
        ({}, torch.tensor([0.5, -2.0]), lambda logits, labels: F.l1_loss(logits[:, 0], labels)),  # the paper's
        ({}, torch.tensor([[0.5], [-2.0]]), lambda logits, labels: F.l1_loss(logits[:, 0], labels[:, 0])),
        ({"regression_loss": "mse"}, torch.tensor([0.5, -2.0]), lambda lo, la: F.mse_loss(lo[:, 0], la)),
        ({"num_labels": 2}, torch.tensor([1, 0]), F.cross_entropy),
        ({"num_labels": 3}, torch.tensor([2, 1]), F.cross_entropy),
        ({"num_labels": 7}, torch.tensor([6, 0]), F.cross_entropy),
        ({"num_labels": 2}, torch.tensor([[1.0, 0.0], [1.0, 1.0]]), F.binary_cross_entropy_with_logits),
    ],
)
def test_losses_follow_problem_type(overrides, labels, reference):
    model = build(**overrides)
    with torch.no_grad():
        outputs = model(**CoupledMambaTester().prepare_inputs(), labels=labels)
    assert outputs.logits.shape == (2, model.config.num_labels)
    torch.testing.assert_close(outputs.loss, reference(outputs.logits, labels))


def test_classification_refuses_sentiment_scores_as_classes():
    model = build(num_labels=3, problem_type="single_label_classification")
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        model(**CoupledMambaTester().prepare_inputs(), labels=torch.tensor([1.4, -0.6]))


# ---------------------------------------------------------------------------------------- outputs, init
def test_model_outputs_and_tuples():
    model = build(CoupledMambaModel)
    inputs = CoupledMambaTester(length=5).prepare_inputs()
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True)
        as_tuple = model(**inputs, return_dict=False)
    assert outputs.last_hidden_state.shape == (2, 3, 5, 16)
    assert outputs.pooler_output.shape == (2, 48) and outputs.modality_pooler_output.shape == (2, 3, 16)
    assert len(outputs.hidden_states) == 3 and outputs.cache is None
    torch.testing.assert_close(outputs.modality_pooler_output, outputs.last_hidden_state.mean(2))
    torch.testing.assert_close(as_tuple[0], outputs.last_hidden_state)


def test_fresh_init_is_mambas():
    model = build(num_labels=2)
    mixer = model.model.layers[0].blocks["text"].mixer
    torch.testing.assert_close(mixer.A_log, torch.log(torch.arange(1.0, 5.0)).expand(32, 4))
    assert torch.equal(mixer.D, torch.ones(32))
    dt = F.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    for linear in (mixer.x_proj, model.classifier.dense):  # PyTorch's default (upstream mamba_ssm), not N(0, 0.02)
        bound = linear.in_features**-0.5
        assert 0.8 * bound < linear.weight.abs().max() <= bound
    assert torch.equal(model.classifier.output.bias, torch.zeros(2))


def test_other_modalities_come_as_keywords():
    config = CoupledMambaConfig(input_sizes={"speech": 4, "face": 6}, hidden_size=8, state_size=4)
    model = CoupledMambaForSequenceClassification(config).eval()
    assert model.main_input_name == "speech_features"
    logits = model(speech_features=torch.randn(2, 5, 4), face_features=torch.randn(2, 5, 6)).logits
    assert logits.shape == (2, 1)


def test_lora_adapters_on_every_projection_train():
    from peft import LoraConfig, get_peft_model

    targets = ["projection", "in_proj", "x_proj", "dt_proj", "out_proj"]
    model = get_peft_model(build(num_labels=3), LoraConfig(r=2, target_modules=targets, init_lora_weights=False))
    model(**CoupledMambaTester().prepare_inputs(), labels=torch.tensor([0, 2])).loss.backward()
    adapters = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in adapters} == set(targets)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters.values())


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda x: x.pop("vision_features"), ValueError, "vision_features is missing"),
        (lambda x: x.update(audio_features=torch.randn(2, 9, 6)), ValueError, r"audio_features must have shape"),
        (lambda x: x.update(audio_features=torch.randn(2, 8, 5)), ValueError, "share one .batch, time. axis"),
        (lambda x: x.update(text_features=torch.zeros(2, 9, 12, dtype=torch.long)), TypeError, "floating-point"),
        (lambda x: x.update(depth_features=torch.randn(2, 9, 3)), ValueError, "unknown modality"),
        (lambda x: x.update(text_attention_mask=torch.ones(2, 8)), ValueError, "text_attention_mask must be"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, error, message):
    model = build()
    inputs = CoupledMambaTester().prepare_inputs()
    change(inputs)
    with pytest.raises(error, match=message):
        model(**inputs)


def test_a_cache_for_another_batch_size_is_refused():
    model = build()
    with pytest.raises(ValueError, match="cache holds 3 sequences"):
        model(**CoupledMambaTester().prepare_inputs(), cache=CoupledMambaCache(model.config, batch_size=3))


# ------------------------------------------------------------------------------- keywords, tracing
def test_the_cache_goes_by_its_new_name_and_the_old_ones():
    model = build()
    inputs = CoupledMambaTester().prepare_inputs()
    with torch.no_grad():
        full = model(**inputs).logits
        for name in ("cache", "cache_params", "past_key_values"):
            prefix = model(**steps(inputs, 0, 4), use_cache=True)
            assert prefix.cache_params is prefix.cache is not None
            rest = model(**steps(inputs, 4, 9), **{name: prefix.cache}).logits
            torch.testing.assert_close(rest, full, atol=ATOL, rtol=0, msg=name)


def test_a_graph_traced_with_full_masks_still_honours_padding():
    """No data-dependent shortcut for all-ones masks: it would be frozen into the traced graph."""
    model = build(CoupledMambaModel, coupling="sum").requires_grad_(False)
    inputs = CoupledMambaTester().prepare_inputs()
    names = list(inputs)

    def pooled(mask, *features):
        return model(**dict(zip(names, features, strict=True)), **masks_for(inputs, mask)).pooler_output

    full = torch.ones(2, 9, dtype=torch.bool)
    padded = full.clone()
    padded[0, 6:] = False
    with torch.no_grad():
        traced = torch.jit.trace(pooled, (full, *inputs.values()), check_trace=False)
        torch.testing.assert_close(
            traced(padded, *inputs.values()), pooled(padded, *inputs.values()), atol=ATOL, rtol=0
        )
        assert not torch.allclose(traced(padded, *inputs.values()), pooled(full, *inputs.values()))
