"""Writes folders laid out exactly as two published checkpoints, with random weights and nothing downloaded:
`state-spaces/mamba-130m-hf` (the language model) and `nvidia/MambaVision-T-1K` (the vision tower), at their real
size or at a tiny size with the same layout (same files, config fields, weight names; small dimensions) for tests.

    python tools/make_published_layouts.py OUT_DIR [--size real|tiny] [--seed 0]
    # OUT_DIR/mamba-130m-hf/       config.json generation_config.json model.safetensors tokenizer.json
    #                              tokenizer_config.json
    # OUT_DIR/MambaVision-T-1K/    config.json configuration_mambavision.py modeling_mambavision.py model.safetensors

What is copied from the published folders (checked against the Hub pages; reference/vlm_coco_vqa.md E1,
reference/mambavision.md §4–§5):
- mamba-130m-hf (main, after "Delete special_tokens_map.json"): config.json's fields as uploaded by transformers
  4.39 (d_model 768, 24 layers, state 16, time_step_rank 48, vocab_size 50280 = the tokenizer's 50,277 entries
  padded to a multiple of 8, bos = eos = pad = 0); model.safetensors with transformers' Mamba names
  (`backbone.embeddings.weight`, `backbone.layers.N.mixer.{A_log,D,conv1d,in_proj,x_proj,dt_proj,out_proj}`,
  `backbone.layers.N.norm.weight`, `backbone.norm_f.weight`) and no `lm_head.weight` (tied: 517 MB = 129.1 M fp32
  parameters). The tokenizer is GPT-NeoX's layout: a byte-level BPE whose vocabulary holds `<|endoftext|>` (id 0)
  and `<|padding|>` (id 1), 23 runs of spaces added after it (ids 50254–50276), `<|endoftext|>` as BOS, EOS and UNK,
  no pad token and no `<image>`; `tokenizer_class` GPTNeoXTokenizer. Its merges here are synthetic (pairs of
  characters in a fixed order), built offline with `tokenizers`: the same size and ids, not the same splits.
- MambaVision-T-1K: config.json with NVIDIA's fields (`architectures`, `auto_map` to the remote-code files,
  depths [1, 3, 8, 4], dim 80, in_dim 32, num_heads [2, 4, 8, 16], window_size [8, 8, 14, 7], mlp_ratio 4,
  drop_path_rate 0.2, `transformers_version` 4.36.2, the 1000 ImageNet names as `id2label`, and the preprocessing
  fields `mean`, `std`, `crop_mode`, `crop_pct` with the values of the variant's timm `default_cfgs`); model.safetensors
  with the hub wrapper's `model.`-prefixed timm keys, the 1000-class head and the BatchNorm statistics included
  (127 MB = 31.8 M fp32 parameters). The two .py files are placeholders naming what they stand for (NVIDIA's code is
  non-commercial and not ours to copy): this package reads the folder without remote code. Left out: the timm
  `mambavision_tiny_1k.pth.tar`, README.md and LICENSE.
"""

from __future__ import annotations

import argparse
import json
import string
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

LANGUAGE_FOLDER, VISION_FOLDER = "mamba-130m-hf", "MambaVision-T-1K"
EOS, PAD_TOKEN_IN_VOCAB = "<|endoftext|>", "<|padding|>"
SPACE_RUNS = [" " * n for n in range(24, 1, -1)]  # GPT-NeoX's 23 added whitespace tokens, after the BPE vocabulary

# Per size: the BPE vocabulary (ids 0 .. bpe_vocab - 1, the two special tokens first), the LM and the tower.
SIZES = {
    "real": {
        "bpe_vocab": 50254,  # + 23 runs of spaces = 50,277 tokenizer entries; the LM's 50,280 rows pad them to 8
        "text": {"hidden_size": 768, "num_hidden_layers": 24, "intermediate_size": 1536, "time_step_rank": 48},
        "vocab_size": 50280,
        "vision": {"depths": [1, 3, 8, 4], "num_heads": [2, 4, 8, 16], "window_size": [8, 8, 14, 7], "dim": 80,
                   "in_dim": 32},
    },
    "tiny": {
        "bpe_vocab": 358,  # + 23 = 381 entries, padded to 384 rows: the same 3 spare rows as the real one
        "text": {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64, "time_step_rank": 2},
        "vocab_size": 384,
        "vision": {"depths": [1, 1, 2, 2], "num_heads": [1, 1, 2, 2], "window_size": [4, 4, 4, 2], "dim": 16,
                   "in_dim": 8},
    },
}  # fmt: skip

# config.json of state-spaces/mamba-130m-hf as uploaded (transformers 4.39); the size fields come from SIZES.
MAMBA_CONFIG = {
    "_name_or_path": "state-spaces/mamba-130m-hf",
    "architectures": ["MambaForCausalLM"],
    "bos_token_id": 0,
    "conv_kernel": 4,
    "eos_token_id": 0,
    "expand": 2,
    "fused_add_norm": True,
    "hidden_act": "silu",
    "initializer_range": 0.1,
    "layer_norm_epsilon": 1e-05,
    "model_type": "mamba",
    "pad_token_id": 0,
    "pad_vocab_size_multiple": 8,
    "rescale_prenorm_residual": False,
    "residual_in_fp32": True,
    "rms_norm": True,
    "ssm_cfg": {},
    "state_size": 16,
    "time_step_floor": 0.0001,
    "time_step_init_scheme": "random",
    "time_step_max": 0.1,
    "time_step_min": 0.001,
    "time_step_scale": 1.0,
    "torch_dtype": "float32",
    "transformers_version": "4.39.0.dev0",
    "use_bias": False,
    "use_cache": True,
    "use_conv_bias": True,
}
GENERATION_CONFIG = {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0,
                     "transformers_version": "4.39.0.dev0"}  # fmt: skip
TOKENIZER_CONFIG = {"add_prefix_space": False, "bos_token": EOS, "clean_up_tokenization_spaces": True,
                    "eos_token": EOS, "model_max_length": 1000000000000000019884624838656,
                    "tokenizer_class": "GPTNeoXTokenizer", "unk_token": EOS}  # fmt: skip

# config.json of nvidia/MambaVision-T-1K (main); the size fields come from SIZES.
MAMBAVISION_CONFIG = {
    "architectures": ["MambaVisionModelForImageClassification"],
    "auto_map": {
        "AutoConfig": "configuration_mambavision.MambaVisionConfig",
        "AutoModel": "modeling_mambavision.MambaVisionModel",
        "AutoModelForImageClassification": "modeling_mambavision.MambaVisionModelForImageClassification",
    },
    "drop_path_rate": 0.2,
    "mlp_ratio": 4,
    "model_type": "mambavision",
    "torch_dtype": "float32",
    "transformers_version": "4.36.2",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "crop_mode": "center",
    "crop_pct": 1.0,
}
PLACEHOLDER = '"""Placeholder for NVIDIA\'s {name} of nvidia/MambaVision-T-1K (not copied: non-commercial licence).\n\n'
PLACEHOLDER += 'mamba_multimodal registers model_type "mambavision" and reads this folder without remote code."""\n'


# ------------------------------------------------------------------------------------------------ tokenizer
def _pair_merges(alphabet: list[str], count: int, taken: set[str]) -> list[tuple[str, str]]:
    """`count` merges of two characters, common ones first (space-prefixed and lowercase letters), in a fixed order."""
    ascii_first = "Ġ" + string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation
    ordered = [c for c in ascii_first if c in alphabet] + [c for c in alphabet if c not in ascii_first]
    merges = []
    for left in ordered:
        for right in ordered:
            if len(merges) == count:
                return merges
            if left + right not in taken:
                merges.append((left, right))
    raise ValueError(f"cannot make {count} two-character merges from {len(alphabet)} characters")


def gpt_neox_like_tokenizer(bpe_vocab: int) -> Tokenizer:
    """GPT-NeoX's tokenizer layout: NFC, byte-level BPE (no prefix space), `<|endoftext|>` 0 and `<|padding|>` 1 as
    special tokens, then 256 byte characters and synthetic merges up to `bpe_vocab` ids, then 23 runs of spaces."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {EOS: 0, PAD_TOKEN_IN_VOCAB: 1, **{char: 2 + i for i, char in enumerate(alphabet)}}
    merges = _pair_merges(alphabet, bpe_vocab - len(vocab), set(vocab))
    for left, right in merges:
        vocab[left + right] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = [AddedToken(token, special=True, normalized=False) for token in (EOS, PAD_TOKEN_IN_VOCAB)]
    tokenizer.add_special_tokens(specials)
    tokenizer.add_tokens([AddedToken(run, normalized=True) for run in SPACE_RUNS])
    return tokenizer


# ------------------------------------------------------------------------------------------------ folders
def _save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({name: tensor.contiguous() for name, tensor in state.items()}, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_mamba_130m_hf(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A folder laid out as state-spaces/mamba-130m-hf (random weights, GPT-NeoX-like tokenizer)."""
    from transformers import MambaConfig, MambaForCausalLM

    dims = SIZES[size]
    folder.mkdir(parents=True, exist_ok=True)
    hidden, layers = dims["text"]["hidden_size"], dims["text"]["num_hidden_layers"]
    config = {**MAMBA_CONFIG, **dims["text"], "d_model": hidden, "d_inner": 2 * hidden, "n_layer": layers,
              "vocab_size": dims["vocab_size"]}  # fmt: skip
    torch.manual_seed(seed)
    fields = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "model_type")}
    model = MambaForCausalLM(MambaConfig(**fields, tie_word_embeddings=True))
    state = {name: tensor for name, tensor in model.state_dict().items() if name != "lm_head.weight"}  # tied
    _save_weights(state, folder / "model.safetensors")
    _write_json(folder / "config.json", config)
    _write_json(folder / "generation_config.json", GENERATION_CONFIG)
    tokenizer = gpt_neox_like_tokenizer(dims["bpe_vocab"])
    tokenizer.save(str(folder / "tokenizer.json"))
    added = {str(token_id): {"content": token.content, "lstrip": False, "normalized": token.normalized,
                             "rstrip": False, "single_word": False, "special": token.special}
             for token_id, token in tokenizer.get_added_tokens_decoder().items()}  # fmt: skip
    _write_json(folder / "tokenizer_config.json", {**TOKENIZER_CONFIG, "added_tokens_decoder": added})
    return folder


def write_mambavision_t_1k(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A folder laid out as nvidia/MambaVision-T-1K (random weights, the 1000-class head, no remote code)."""
    from mamba_multimodal import MambaVisionConfig, MambaVisionForImageClassification
    from mamba_multimodal.configuration.imagenet_labels import IMAGENET_1K_LABELS

    dims = SIZES[size]
    folder.mkdir(parents=True, exist_ok=True)
    config = {**MAMBAVISION_CONFIG, **dims["vision"], "id2label": dict(enumerate(IMAGENET_1K_LABELS))}
    torch.manual_seed(seed)
    fields = {k: v for k, v in config.items() if k not in ("architectures", "auto_map", "model_type", "torch_dtype")}
    fields |= {"drop_path_rate": 0.0}  # building only; the file keeps NVIDIA's 0.2
    model = MambaVisionForImageClassification(MambaVisionConfig(**fields)).eval()
    _save_weights(model.state_dict(), folder / "model.safetensors")  # the `model.` prefix: the hub wrapper's
    _write_json(folder / "config.json", {**config, "id2label": {str(k): v for k, v in config["id2label"].items()}})
    for name in ("configuration_mambavision.py", "modeling_mambavision.py"):
        (folder / name).write_text(PLACEHOLDER.format(name=name), encoding="utf-8")
    return folder


def write_published_layouts(out_dir: Path, size: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
    """(vision folder, language folder) under `out_dir`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    out_dir = Path(out_dir)
    vision = write_mambavision_t_1k(out_dir / VISION_FOLDER, size, seed)
    return vision, write_mamba_130m_hf(out_dir / LANGUAGE_FOLDER, size, seed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for folder in write_published_layouts(arguments.out_dir, arguments.size, arguments.seed):
        print(folder)
