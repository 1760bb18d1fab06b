"""VLM-Mamba: the configuration, the three vision towers, image placement, the loss, gradients, save/load, and the
language model against transformers' MambaForCausalLM, the vision feature cache. Generation is in test_generation.py
(every family)."""

import copy

import pytest
import torch
import torch.nn.functional as F
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    MambaConfig,
)

from mamba_multimodal import (
    MambaVisionConfig,
    VisionMambaModel,
    VLMambaConfig,
    VLMambaForConditionalGeneration,
    VLMambaForImageTextClassification,
)

VOCAB = 64
IMAGE_TOKEN = VOCAB - 1
ATOL = 1e-4
VISION_CONFIGS = {
    "vision_mamba": {"model_type": "vision_mamba", "image_size": 16, "patch_size": 8, "hidden_size": 16,
                     "num_hidden_layers": 2, "state_size": 4},
    "vision_mamba_conv": {"model_type": "vision_mamba", "image_size": 16, "patch_size": 8, "hidden_size": 16,
                          "num_hidden_layers": 1, "state_size": 4, "stem": "conv"},
    "patch": {"model_type": "vlm_mamba_patch", "image_size": 16, "patch_size": 8},
    "mambavision": MambaVisionConfig.from_preset("mambavision-tiny-test").to_dict(),
}  # fmt: skip


def tiny_config(mode="vision_mamba", **overrides):
    text = MambaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, state_size=8, use_mambapy=False)
    return VLMambaConfig(vision_config=VISION_CONFIGS[mode], text_config=text, image_token_id=IMAGE_TOKEN, **overrides)


def prompt(config, text_lengths=(5, 5)):
    """input_ids (b, P + text) with the image tokens first, and one image per row."""
    size = config.vision_config.image_size
    text = torch.randint(3, IMAGE_TOKEN, (len(text_lengths), max(text_lengths)))
    image = torch.full((len(text_lengths), config.image_seq_length), config.image_token_id)
    return torch.cat([image, text], 1), torch.randn(len(text_lengths), 3, size, size)


# ------------------------------------------------------------------------------------------ configuration
def test_the_default_config_builds_a_small_working_model():
    config = VLMambaConfig()
    model = VLMambaForConditionalGeneration(config).eval()
    input_ids, pixel_values = prompt(VLMambaConfig())
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
    assert logits.shape == (2, config.image_seq_length + 5, config.text_config.vocab_size)
    assert config.vision_mode == "vision_mamba" and config.image_seq_length == 64


@pytest.mark.parametrize("mode", VISION_CONFIGS)
def test_the_config_round_trips_with_its_sub_configs(mode, tmp_path):
    config = tiny_config(mode)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, VLMambaConfig) and loaded.vision_mode == config.vision_mode
    assert {**loaded.to_dict(), "_name_or_path": ""} == {**config.to_dict(), "_name_or_path": ""}
    assert loaded.get_text_config(decoder=True).model_type == "mamba"  # what generate() builds the cache from


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_token_id": VOCAB}, r"image_token_id must be a token id of the language model, in \[0, 64\)"),
        ({"projector_hidden_act": "swish2"}, "Field 'projector_hidden_act' expected one of"),
        ({"projector_num_layers": 0}, "projector_num_layers must be a positive int"),
        ({"vision_feature_layer": 5}, "vision_feature_layer must index one of the tower's 3 hidden states"),
        ({"vision_config": {"model_type": "clip_vision_model"}}, "vision_config.model_type must be one of"),
        ({"vision_config": {"model_type": "vision_mamba", "image_size": 20, "patch_size": 8}},
         r"image_size \(20\) must be a multiple of patch_size \(8\)"),
        ({"text_config": {"model_type": "llama"}}, "text_config.model_type must be 'mamba'"),
        ({"vision_config": {"model_type": "vision_mamba", "stem": "convnext"}}, "Field 'stem' expected one of"),
        ({"vision_config": {"model_type": "vision_mamba", "image_size": 24, "patch_size": 12, "stem": "conv"}},
         "patch_size must be a power of 2"),
    ],
)  # fmt: skip
def test_bad_configs_raise_naming_the_field(overrides, message):
    settings = {"text_config": {"vocab_size": VOCAB, "hidden_size": 32}, "image_token_id": IMAGE_TOKEN, **overrides}
    with pytest.raises(ValueError, match=message):
        VLMambaConfig(**settings)


# ------------------------------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("mode", VISION_CONFIGS)
def test_the_image_goes_to_the_image_token_positions_and_conditions_the_text(mode):
    config = tiny_config(mode)
    model = VLMambaForConditionalGeneration(config).eval()
    input_ids, pixel_values = prompt(config)
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixel_values)
        other_image = model(input_ids=input_ids, pixel_values=pixel_values.flip(0))
        features = model.get_image_features(pixel_values).pooler_output
        embeds = model.get_input_embeddings()(input_ids)
        embeds[:, : config.image_seq_length] = features
        by_hand = model(inputs_embeds=embeds)
    assert out.image_hidden_states.shape == (2, config.image_seq_length, 32)
    torch.testing.assert_close(out.logits, by_hand.logits)
    assert not torch.allclose(out.logits[:, -1], other_image.logits[:, -1]), "the text must see the image"


@pytest.mark.parametrize("mode", list(VISION_CONFIGS))
def test_a_bfloat16_model_takes_the_processors_float32_pixel_values(mode):
    """lmms-eval loads every model in bfloat16 and passes the processor's float32 pixel values: the model casts them,
    so the answer is that of bfloat16 pixel values."""
    config = tiny_config(mode)
    model = VLMambaForConditionalGeneration(config).eval().to(torch.bfloat16)
    input_ids, pixel_values = prompt(config)
    with torch.no_grad():
        from_float32 = model(input_ids=input_ids, pixel_values=pixel_values).logits
        from_bfloat16 = model(input_ids=input_ids, pixel_values=pixel_values.to(torch.bfloat16)).logits
    torch.testing.assert_close(from_float32, from_bfloat16, rtol=0, atol=0)


def test_the_image_tokens_are_found_in_inputs_embeds_too():
    """LLaVA's `get_placeholder_mask`: without input_ids, the image token's embedding marks where the images go."""
    config = tiny_config()
    model = VLMambaForConditionalGeneration(config).eval()
    input_ids, pixel_values = prompt(config)
    with torch.no_grad():
        expected = model(input_ids=input_ids, pixel_values=pixel_values).logits
        embeds = model.get_input_embeddings()(input_ids)
        torch.testing.assert_close(model(inputs_embeds=embeds, pixel_values=pixel_values).logits, expected)
        with pytest.raises(ValueError, match=r"hold 8 image tokens .* 1 image\(s\) × 4 tokens each need 4"):
            model(inputs_embeds=embeds, pixel_values=pixel_values[:1])


def test_image_token_counts_that_do_not_match_the_images_raise():
    config = tiny_config()
    model = VLMambaForConditionalGeneration(config).eval()
    input_ids, pixel_values = prompt(config)
    with pytest.raises(ValueError, match=r"input_ids hold 8 image tokens .* 1 image\(s\) × 4 tokens each need 4"):
        model(input_ids=input_ids, pixel_values=pixel_values[:1])
    with pytest.raises(ValueError, match="image tokens but no pixel_values"):
        model(input_ids=input_ids)
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(images, 3, 16, 16\)"):
        model(input_ids=input_ids, pixel_values=torch.randn(2, 3, 32, 32))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        model(input_ids=input_ids, pixel_values=pixel_values, image_sizes=[(16, 16)])


def test_the_loss_is_next_token_cross_entropy_over_the_labelled_text_only():
    config = tiny_config()
    model = VLMambaForConditionalGeneration(config).eval()
    input_ids, pixel_values = prompt(config, text_lengths=(6, 6))
    labels = input_ids.clone()  # the image tokens are labelled too: the model must ignore them
    labels[0, config.image_seq_length : config.image_seq_length + 2] = -100  # a prompt
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixel_values, labels=labels)
    targets = labels[:, 1:].clone()
    targets[input_ids[:, 1:] == IMAGE_TOKEN] = -100
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    # transformers' shift_labels (targets aligned with the logits): an image token is no target there either.
    shift_labels = F.pad(labels[:, 1:], (0, 1), value=-100)
    with torch.no_grad():
        shifted = model(input_ids=input_ids, pixel_values=pixel_values, labels=labels, shift_labels=shift_labels).loss
    torch.testing.assert_close(shifted, expected)


def test_text_only_logits_equal_transformers_mamba_with_the_same_weights():
    """The language model is transformers' Mamba: its checkpoints load into `model.language_model` + `lm_head`."""
    config = tiny_config()
    model = VLMambaForConditionalGeneration(config).eval()
    theirs = transformers.MambaForCausalLM(config.text_config).eval()
    theirs.backbone.load_state_dict(model.model.language_model.state_dict())
    theirs.lm_head.load_state_dict(model.lm_head.state_dict())
    input_ids = torch.randint(3, IMAGE_TOKEN, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).logits, theirs(input_ids).logits, atol=ATOL, rtol=0)


def test_tied_word_embeddings_share_the_head_and_survive_a_round_trip(tmp_path):
    model = VLMambaForConditionalGeneration(tiny_config(tie_word_embeddings=True))
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    model.save_pretrained(tmp_path)
    loaded = VLMambaForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.lm_head.weight.data_ptr() == loaded.get_input_embeddings().weight.data_ptr()
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


# ------------------------------------------------------------------------------------------ vision feature cache
def tower_calls(model) -> list[int]:
    """The batch size of every forward of the model's vision tower, as it happens."""
    calls = []
    model.model.vision_tower.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize("mode", ["mambavision", "vision_mamba"])
def test_the_vision_feature_cache_gives_the_frozen_towers_output_running_it_once_per_image(mode):
    torch.manual_seed(0)
    model = VLMambaForConditionalGeneration(tiny_config(mode)).train()
    model.model.vision_tower.requires_grad_(False)
    input_ids, pixel_values = prompt(model.config, (5, 5, 5))
    pixel_values[2] = pixel_values[0]  # one image twice in the batch
    reference = copy.deepcopy(model)
    reference.model.vision_tower.eval()  # a frozen tower: running statistics, no drop-path
    expected = reference(input_ids=input_ids, pixel_values=pixel_values).logits
    cache, calls = model.enable_vision_feature_cache(), tower_calls(model)
    first = model(input_ids=input_ids, pixel_values=pixel_values).logits
    order = [1, 0, 2]
    second = model(input_ids=input_ids[order], pixel_values=pixel_values[order]).logits
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(second, expected[order], rtol=0, atol=1e-5)
    assert calls == [2] and (cache.misses, cache.hits, len(cache)) == (2, 4, 2)
    assert model.training and model.model.vision_tower.training  # the modes are the caller's again
    second.sum().backward()
    trained = {name for name, weight in model.named_parameters() if weight.grad is not None}
    assert any(".multi_modal_projector." in name for name in trained)
    assert not any(".vision_tower." in name for name in trained)


def test_the_vision_feature_cache_serves_the_classifier_and_steps_aside_for_hidden_states():
    torch.manual_seed(0)
    model = VLMambaForImageTextClassification(tiny_config("vision_mamba", num_labels=3)).eval()
    model.requires_grad_(False)
    _, pixel_values = prompt(model.config)
    input_ids = torch.randint(3, IMAGE_TOKEN, (2, 6))
    expected = model(input_ids=input_ids, pixel_values=pixel_values).logits
    cache, calls = model.enable_vision_feature_cache(), tower_calls(model)
    for _ in range(2):
        torch.testing.assert_close(model(input_ids=input_ids, pixel_values=pixel_values).logits, expected)
    assert calls == [2] and cache.hits == 2
    features = model.model.get_image_features(pixel_values, output_hidden_states=True)
    assert features.hidden_states is not None and calls == [2, 2]  # the tower ran: its hidden states were asked for
    model.disable_vision_feature_cache()
    model(input_ids=input_ids, pixel_values=pixel_values)
    assert calls == [2, 2, 2]


def test_the_vision_feature_cache_refuses_a_tower_that_trains():
    model = VLMambaForConditionalGeneration(tiny_config("vision_mamba"))
    with pytest.raises(ValueError, match=r"the vision tower trains .* freeze it first"):
        model.enable_vision_feature_cache()
    assert model.model.vision_feature_cache is None


# ------------------------------------------------------------------------------------------ from pretrained parts
@pytest.mark.parametrize("mode", ["vision_mamba", "mambavision"])
def test_from_pretrained_parts_keeps_both_pretrained_models(mode, tmp_path):
    """A transformers MambaForCausalLM checkpoint and a vision checkpoint (MambaVision's with its classification
    head) become the VLM's language model and tower unchanged; only the projector is new."""
    config = tiny_config(mode)
    language = transformers.MambaForCausalLM(config.text_config).eval()
    language.save_pretrained(tmp_path / "language")
    if mode == "mambavision":
        from mamba_multimodal import MambaVisionForImageClassification

        vision = MambaVisionForImageClassification(config.vision_config).eval()
    else:
        vision = VisionMambaModel(config.vision_config).eval()
    vision.save_pretrained(tmp_path / "vision")
    model = VLMambaForConditionalGeneration.from_pretrained_parts(
        tmp_path / "vision", tmp_path / "language", image_token_id=IMAGE_TOKEN
    )
    input_ids, pixel_values = prompt(model.config)
    text_only = input_ids[:, model.config.image_seq_length :]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=text_only).logits, language(text_only).logits, atol=ATOL, rtol=0)
        expected = AutoModel.from_pretrained(tmp_path / "vision").eval()(pixel_values).last_hidden_state
        expected = expected.flatten(2).transpose(1, 2) if mode == "mambavision" else expected  # (b, P, d_v)
        projected = model.get_image_features(pixel_values).pooler_output
        torch.testing.assert_close(projected, model.model.multi_modal_projector(expected))
    assert model.config.tie_word_embeddings == language.config.tie_word_embeddings


# ------------------------------------------------------------------------------------------ classification
@pytest.mark.parametrize("fusion_method", ["concat", "add", "mlp"])
def test_image_text_classification_fuses_the_image_for_any_text_length(fusion_method):
    config = tiny_config(fusion_method=fusion_method, num_labels=3)
    model = VLMambaForImageTextClassification(config).eval()
    pixel_values = torch.randn(2, 3, 16, 16)
    for length in (3, 17):  # neither equals the 4 image tokens (the zeta block needed it to)
        input_ids = torch.randint(3, IMAGE_TOKEN, (2, length))
        with torch.no_grad():
            logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
            swapped = model(input_ids=input_ids, pixel_values=pixel_values.flip(0)).logits
        assert logits.shape == (2, 3)
        assert not torch.allclose(logits, swapped), "the prediction must depend on the image"


@pytest.mark.parametrize("fusion_method", ["concat", "add", "mlp"])
def test_image_text_classification_ignores_padding_on_either_side(fusion_method):
    model = VLMambaForImageTextClassification(tiny_config(fusion_method=fusion_method, num_labels=2)).eval()
    pixel_values = torch.randn(1, 3, 16, 16)
    text = torch.randint(3, IMAGE_TOKEN, (1, 6))
    pad = torch.zeros(1, 3, dtype=torch.long)
    with torch.no_grad():
        alone = model(input_ids=text, pixel_values=pixel_values).logits
        for ids, mask in (
            (torch.cat([pad, text], 1), torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])),
            (torch.cat([text, pad], 1), torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0, 0]])),
        ):
            padded = model(input_ids=ids, pixel_values=pixel_values, attention_mask=mask).logits
            torch.testing.assert_close(padded, alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("num_labels", "labels", "loss"),
    [
        (3, torch.tensor([0, 2]), lambda logits, labels: F.cross_entropy(logits, labels)),
        (1, torch.tensor([0.5, -1.0]), lambda logits, labels: F.mse_loss(logits.squeeze(-1), labels)),
        (2, torch.tensor([[1.0, 0.0], [1.0, 1.0]]), F.binary_cross_entropy_with_logits),
    ],
)
def test_image_text_classification_losses_follow_the_problem_type(num_labels, labels, loss):
    model = VLMambaForImageTextClassification(tiny_config(num_labels=num_labels)).eval()
    input_ids, pixel_values = torch.randint(3, IMAGE_TOKEN, (2, 5)), torch.randn(2, 3, 16, 16)
    out = model(input_ids=input_ids, pixel_values=pixel_values, labels=labels)
    torch.testing.assert_close(out.loss, loss(out.logits, labels))
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{name} got no gradient"


def test_image_text_classification_refuses_image_tokens_and_missing_images(tmp_path):
    model = VLMambaForImageTextClassification(tiny_config(num_labels=2)).eval()
    with pytest.raises(ValueError, match="text only"):
        model(input_ids=torch.full((1, 4), IMAGE_TOKEN), pixel_values=torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="needs both input_ids"):
        model(input_ids=torch.randint(3, 9, (1, 4)))
    model.save_pretrained(tmp_path)
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path)) is VLMambaForImageTextClassification


# ------------------------------------------------------------------------------------------ LoRA
def test_lora_on_every_mamba_projection_of_both_towers_trains_and_merges_exactly():
    """PEFT's Mamba guard does not know model_type vlm_mamba, and every projection here is called as a module, so
    adapters on in_proj, x_proj, dt_proj and out_proj (vision tower and LM) all train; merging changes nothing."""
    from peft import LoraConfig, get_peft_model

    config = tiny_config()
    model = VLMambaForConditionalGeneration(config)
    targets = ["in_proj", "x_proj", "dt_proj", "out_proj"]
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False,
                      modules_to_save=["multi_modal_projector"])  # fmt: skip
    peft_model = get_peft_model(model, lora)
    input_ids, pixel_values = prompt(config)
    peft_model.train()
    peft_model(input_ids=input_ids, pixel_values=pixel_values, labels=input_ids).loss.backward()
    adapters = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    mixers = 2 * 2 + 2  # VisionMamba: 2 layers × (forward + backward mixer); LM: 2 layers
    assert len(adapters) == 2 * len(targets) * mixers
    for name, parameter in adapters.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{name} got no gradient"
    trained_projector = [
        p for n, p in peft_model.named_parameters() if "multi_modal_projector" in n and p.requires_grad
    ]
    assert trained_projector and all(p.grad is not None for p in trained_projector)
    peft_model.eval()
    with torch.no_grad():
        unmerged = peft_model(input_ids=input_ids, pixel_values=pixel_values).logits
        merged = peft_model.merge_and_unload()(input_ids=input_ids, pixel_values=pixel_values).logits
    torch.testing.assert_close(merged, unmerged, atol=ATOL, rtol=0)
