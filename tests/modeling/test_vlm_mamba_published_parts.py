"""VLM-Mamba from the parts its users start from: folders laid out as `state-spaces/mamba-130m-hf` and
`nvidia/MambaVision-T-1K` (`tools/make_published_layouts.py`, random weights, tiny dimensions), through
`VLMambaProcessor.from_pretrained_parts` and `VLMambaForConditionalGeneration.from_pretrained_parts`, to a saved VLM
folder that the Auto classes load back."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from mamba_multimodal import VLMambaForConditionalGeneration, VLMambaProcessor

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_published_layouts.py"
_spec = importlib.util.spec_from_file_location("make_published_layouts", TOOL)
layouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layouts)

# The published folders (huggingface.co/state-spaces/mamba-130m-hf and nvidia/MambaVision-T-1K, main), written out
# here by hand: files, config.json fields, and the sizes their pages state.
MAMBA_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
MAMBA_FIELDS = {
    "_name_or_path", "architectures", "bos_token_id", "conv_kernel", "d_inner", "d_model", "eos_token_id", "expand",
    "fused_add_norm", "hidden_act", "hidden_size", "initializer_range", "intermediate_size", "layer_norm_epsilon",
    "model_type", "n_layer", "num_hidden_layers", "pad_token_id", "pad_vocab_size_multiple",
    "rescale_prenorm_residual", "residual_in_fp32", "rms_norm", "ssm_cfg", "state_size", "time_step_floor",
    "time_step_init_scheme", "time_step_max", "time_step_min", "time_step_rank", "time_step_scale", "torch_dtype",
    "transformers_version", "use_bias", "use_cache", "use_conv_bias", "vocab_size",
}  # fmt: skip
MAMBAVISION_FILES = {"config.json", "configuration_mambavision.py", "modeling_mambavision.py", "model.safetensors"}
MAMBAVISION_FIELDS = {
    "architectures", "auto_map", "depths", "dim", "drop_path_rate", "in_dim", "mlp_ratio", "model_type", "num_heads",
    "torch_dtype", "transformers_version", "window_size", "id2label", "mean", "std", "crop_mode", "crop_pct",
}  # fmt: skip
MAMBA_130M_PARAMETERS = 129_135_360  # model.safetensors: 517 MB of float32 (tied head not stored)
MAMBAVISION_T_PARAMETERS = 31_794_248  # "31.8M" on the model card; model.safetensors 127 MB
GPT_NEOX_ENTRIES, MAMBA_130M_VOCAB = 50_277, 50_280


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """(vision folder, language folder) at the tiny size."""
    return layouts.write_published_layouts(tmp_path_factory.mktemp("published"), size="tiny")


def photo(seed: int = 0, size=(90, 70)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), "pt") as weights:
        return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118


# ------------------------------------------------------------------------------------------ the layouts
def test_the_language_folder_has_the_published_files_fields_and_weight_names(parts):
    _, language = parts
    assert {path.name for path in language.iterdir()} == MAMBA_FILES
    config = json.loads((language / "config.json").read_text())
    assert set(config) == MAMBA_FIELDS
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (0, 0, 0)
    d, layers, rank, vocab = config["d_model"], config["n_layer"], config["time_step_rank"], config["vocab_size"]
    expected = {"backbone.embeddings.weight": (vocab, d), "backbone.norm_f.weight": (d,)}
    for i in range(layers):  # transformers' Mamba names; state 16, conv 4, expand 2
        mixer = f"backbone.layers.{i}.mixer."
        expected |= {f"backbone.layers.{i}.norm.weight": (d,), mixer + "A_log": (2 * d, 16), mixer + "D": (2 * d,),
                     mixer + "conv1d.weight": (2 * d, 1, 4), mixer + "conv1d.bias": (2 * d,),
                     mixer + "in_proj.weight": (4 * d, d), mixer + "x_proj.weight": (rank + 32, 2 * d),
                     mixer + "dt_proj.weight": (2 * d, rank), mixer + "dt_proj.bias": (2 * d,),
                     mixer + "out_proj.weight": (d, 2 * d)}  # fmt: skip
    assert weight_shapes(language / "model.safetensors") == expected  # no lm_head.weight: tied


def test_the_tokenizer_has_gpt_neox_special_tokens_and_no_pad_or_image_token(parts):
    _, language = parts
    config = json.loads((language / "tokenizer_config.json").read_text())
    assert "pad_token" not in config and config["tokenizer_class"] == "GPTNeoXTokenizer"
    assert config["eos_token"] == config["bos_token"] == config["unk_token"] == "<|endoftext|>"
    special = {int(i): token["content"] for i, token in config["added_tokens_decoder"].items() if token["special"]}
    assert special == {0: "<|endoftext|>", 1: "<|padding|>"}
    tokenizer = AutoTokenizer.from_pretrained(language)
    assert "<image>" not in tokenizer.get_vocab()
    text = "Question: what shape is it?  Answer: a circle."
    assert tokenizer.decode(tokenizer(text).input_ids) == text  # byte-level: the text comes back
    assert len(tokenizer) + 3 == json.loads((language / "config.json").read_text())["vocab_size"]


def test_the_real_size_tokenizer_has_gpt_neox_s_entry_count():
    tokenizer = layouts.gpt_neox_like_tokenizer(layouts.SIZES["real"]["bpe_vocab"])
    assert tokenizer.get_vocab_size(with_added_tokens=True) == GPT_NEOX_ENTRIES
    assert (tokenizer.token_to_id("<|endoftext|>"), tokenizer.token_to_id("<|padding|>")) == (0, 1)
    assert tokenizer.token_to_id(" " * 24) == 50254 and tokenizer.token_to_id("  ") == 50276


def test_the_real_size_dimensions_give_the_published_parameter_counts():
    from transformers import MambaConfig, MambaForCausalLM

    from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification

    real = layouts.SIZES["real"]
    assert real["vocab_size"] == MAMBA_130M_VOCAB
    with torch.device("meta"):
        text_config = MambaConfig(**real["text"], vocab_size=real["vocab_size"], tie_word_embeddings=True)
        language = MambaForCausalLM(text_config)
        vision = MambaVisionForImageClassification(MambaVisionConfig(**real["vision"]))
    assert sum(p.numel() for p in language.parameters()) == MAMBA_130M_PARAMETERS
    assert sum(p.numel() for p in vision.parameters()) == MAMBAVISION_T_PARAMETERS


def test_the_vision_folder_has_nvidia_s_files_fields_and_prefixed_timm_keys(parts):
    vision, _ = parts
    assert {path.name for path in vision.iterdir()} == MAMBAVISION_FILES
    config = json.loads((vision / "config.json").read_text())
    assert set(config) == MAMBAVISION_FIELDS and len(config["id2label"]) == 1000
    assert config["auto_map"]["AutoModel"] == "modeling_mambavision.MambaVisionModel"
    shapes = weight_shapes(vision / "model.safetensors")
    assert all(name.startswith("model.") for name in shapes)
    in_dim, dim = config["in_dim"], config["dim"]
    assert shapes["model.patch_embed.conv_down.0.weight"] == (in_dim, 3, 3, 3)
    assert shapes["model.levels.0.downsample.reduction.0.weight"] == (2 * dim, dim, 3, 3)
    assert shapes["model.head.weight"] == (1000, 8 * dim)
    assert "model.norm.running_var" in shapes and "model.levels.3.downsample.reduction.0.weight" not in shapes
    assert "model.levels.2.blocks.0.mixer.conv1d_x.weight" in shapes  # the first half of a level: Mamba mixers
    assert "model.levels.2.blocks.1.mixer.qkv.weight" in shapes  # the second half: attention


# ------------------------------------------------------------------------------------------ the VLM from the parts
def test_the_processor_adds_the_image_token_and_keeps_a_pad_token(parts):
    vision, language = parts
    before = AutoTokenizer.from_pretrained(language)
    processor = VLMambaProcessor.from_pretrained_parts(vision, language)
    tokenizer = processor.tokenizer
    assert processor.image_token_id == len(before) == tokenizer.convert_tokens_to_ids("<image>")
    assert len(tokenizer) == len(before) + 1
    # transformers' GPTNeoXTokenizer pads with GPT-NeoX's own <|padding|> (id 1) where the folder names no pad.
    assert tokenizer.pad_token_id == 1 and tokenizer.eos_token_id == 0
    assert processor.image_seq_length == 4  # the tiny tower: a 64-pixel image, a 2 × 2 stage-4 map
    inputs = processor(images=photo(), text="<image>Question: what is it? Answer:", return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 64, 64)
    assert inputs["input_ids"][0, :4].tolist() == [processor.image_token_id] * 4


def test_a_tokenizer_without_a_pad_token_pads_with_eos(parts):
    from transformers import PreTrainedTokenizerFast

    vision, language = parts
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(language / "tokenizer.json"), eos_token="<|endoftext|>")
    assert tokenizer.pad_token is None
    processor = VLMambaProcessor.from_pretrained_parts(vision, tokenizer)
    assert processor.tokenizer.pad_token_id == processor.tokenizer.eos_token_id == 0


def test_the_image_token_fits_the_padded_vocabulary_so_nothing_is_resized(parts):
    """mamba-130m-hf: 50,277 entries + <image> = 50,278 ≤ 50,280 rows (tiny: 381 + 1 ≤ 384)."""
    vision, language = parts
    processor = VLMambaProcessor.from_pretrained_parts(vision, language)
    model = VLMambaForConditionalGeneration.from_pretrained_parts(vision, language, processor=processor)
    rows = json.loads((language / "config.json").read_text())["vocab_size"]
    assert model.config.text_config.vocab_size == rows == model.get_input_embeddings().num_embeddings
    assert model.config.image_token_id == processor.image_token_id < rows
    with safe_open(str(language / "model.safetensors"), "pt") as weights:
        assert torch.equal(model.get_input_embeddings().weight, weights.get_tensor("backbone.embeddings.weight"))
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.generation_config.pad_token_id == 1 and model.generation_config.eos_token_id == 0


def test_a_tokenizer_that_outgrows_the_vocabulary_resizes_the_embeddings_to_a_multiple_of_8(parts):
    vision, language = parts
    tokenizer = AutoTokenizer.from_pretrained(language)
    tokenizer.add_tokens(["<extra_0>", "<extra_1>", "<extra_2>"], special_tokens=True)  # 384 entries: full
    processor = VLMambaProcessor.from_pretrained_parts(vision, tokenizer)  # <image> becomes id 384
    model = VLMambaForConditionalGeneration.from_pretrained_parts(vision, language, processor=processor)
    assert processor.image_token_id == 384 == model.config.image_token_id
    assert model.config.text_config.vocab_size == 392 == model.get_input_embeddings().num_embeddings  # pad multiple 8
    assert model.lm_head.weight.shape[0] == 392
    with safe_open(str(language / "model.safetensors"), "pt") as weights:
        old = weights.get_tensor("backbone.embeddings.weight")
    torch.testing.assert_close(model.get_input_embeddings().weight[:384], old, atol=0, rtol=0)
    inputs = processor(images=photo(), text="<extra_1> what is it?", return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()


def test_the_saved_vlm_round_trips_through_the_auto_classes(parts, tmp_path):
    vision, language = parts
    processor = VLMambaProcessor.from_pretrained_parts(vision, language)
    model = VLMambaForConditionalGeneration.from_pretrained_parts(vision, language, processor=processor)
    images, prompts = [photo(1), photo(2, (64, 64))], ["<image>Question: what is it? Answer:", "<image>Caption:"]
    inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    model.save_pretrained(tmp_path, processor=processor)

    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    again = loaded_processor(images=images, text=prompts, padding=True, return_tensors="pt")
    for name in ("input_ids", "attention_mask", "pixel_values"):
        assert torch.equal(again[name], inputs[name]), name
    assert loaded.config.image_token_id == model.config.image_token_id
    with torch.no_grad():
        assert torch.equal(loaded(**again).logits, logits)
        base = AutoModel.from_pretrained(tmp_path).eval()
        assert torch.equal(base(**again).last_hidden_state, model.model(**inputs).last_hidden_state)
    assert torch.equal(loaded.generate(**again, max_new_tokens=5, do_sample=False), generated)


def test_the_published_lm_config_loads_without_a_warning_and_builds_no_refused_vlm_config(parts):
    """state-spaces' config.json also holds mamba_ssm's names (d_model, n_layer, ssm_cfg, ...): loading keeps them
    quietly, as transformers does, and the VLM built from the parts carries only the fields (a new config refuses
    unknown keys)."""
    from transformers.testing_utils import CaptureLogger
    from transformers.utils import logging

    from mamba_multimodal import MambaForCausalLM

    vision, language = parts
    with CaptureLogger(logging.get_logger("mamba_multimodal.configuration.validation")) as captured:
        lm = MambaForCausalLM.from_pretrained(language)
    assert captured.out == "" and lm.config.n_layer == lm.config.num_hidden_layers
    text_config = VLMambaForConditionalGeneration.from_pretrained_parts(vision, lm).config.text_config.to_dict()
    assert not {"d_model", "n_layer", "ssm_cfg", "d_inner"} & set(text_config)
