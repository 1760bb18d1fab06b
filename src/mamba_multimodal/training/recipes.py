"""VLM-Mamba on easy-VQA, the embedded data: the model and the training set that the learning benchmark
(`bench/bench_vlm_learning.py`), the command line's default (`mamba-multimodal train vqa`) and the demo start from.

    from mamba_multimodal.training.recipes import easy_vqa_vlm, easy_vqa_vqa_training_set

    model, processor = easy_vqa_vlm("mambavision")      # 64×64 images, the bundled 365-token tokenizer
    train = easy_vqa_vqa_training_set()                 # {image, prompt, answer}: questions + image descriptions

The training set mixes each training image's description ("a red circle", `load_easy_vqa_captions`) in with the
questions: the description names the colour and the shape of every image directly, so the image pathway learns
from it instead of from the yes / no answers alone (LLaVA's alignment stage, run together with the task).
"""

from __future__ import annotations

import datasets
from transformers import MambaConfig

from ..configuration.configuration_vlm_mamba import VLMambaConfig
from ..modeling.modeling_vlm_mamba import VLMambaForConditionalGeneration
from ..processing.processing_vlm_mamba import VLMambaProcessor, bundled_tokenizer, caption_prompt, vqa_prompt
from .data.easy_vqa import load_easy_vqa, load_easy_vqa_captions

# Vision towers for easy-VQA's 64×64 images (`bench/bench_vlm_learning.py` compares them).
EASY_VQA_VISION_TOWERS = {
    # NVIDIA's hybrid backbone, narrow: conv stages with BatchNorm learn the shapes fastest; 2×2 = 4 image tokens.
    "mambavision": {"model_type": "mambavision", "dim": 32, "in_dim": 16, "depths": [1, 1, 2, 1],
                    "num_heads": [2, 2, 4, 4], "window_size": [8, 8, 2, 1], "image_size": 64},
    # Attention-free: a conv stem to 4×4 = 16 tokens, then 2 bidirectional Mamba blocks.
    "vision_mamba": {"model_type": "vision_mamba", "image_size": 64, "patch_size": 16, "stem": "conv",
                     "hidden_size": 96, "num_hidden_layers": 2, "state_size": 16, "bidirectional": True},
    # No encoder: 16×16-pixel patches straight into the projector.
    "patch": {"model_type": "vlm_mamba_patch", "image_size": 64, "patch_size": 16},
    # For tests and smoke runs: 32×32 images, a width-16 VisionMamba (with a width-16, 2-layer LM).
    "tiny": {"model_type": "vision_mamba", "image_size": 32, "patch_size": 8, "hidden_size": 16},
}  # fmt: skip


def easy_vqa_vlm_config(vision: str = "mambavision", tokenizer=None, **overrides) -> VLMambaConfig:
    """A small VLM-Mamba for easy-VQA: the chosen tower, a 3-layer width-128 Mamba LM (2 layers of width 16 for
    "tiny") over the bundled tokenizer's vocabulary, tied embeddings. `overrides` are further `VLMambaConfig` fields
    (num_labels, id2label, ...)."""
    if vision not in EASY_VQA_VISION_TOWERS:
        raise ValueError(f"vision must be one of {sorted(EASY_VQA_VISION_TOWERS)}, got {vision!r}")
    tokenizer = tokenizer or bundled_tokenizer()
    sizes = {"hidden_size": 128, "num_hidden_layers": 3, "state_size": 16}
    if vision == "tiny":
        sizes = {"hidden_size": 16, "num_hidden_layers": 2, "state_size": 4}
    text = MambaConfig(
        vocab_size=len(tokenizer), use_mambapy=False, **sizes,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    return VLMambaConfig(
        vision_config=dict(EASY_VQA_VISION_TOWERS[vision]), text_config=text, tie_word_embeddings=True,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), **overrides,
    )  # fmt: skip


def easy_vqa_vlm(vision: str = "mambavision", model_class=VLMambaForConditionalGeneration, **overrides):
    """(model, processor): a freshly initialised `model_class` on `easy_vqa_vlm_config(vision, **overrides)`."""
    tokenizer = bundled_tokenizer()
    return vlm_and_processor(easy_vqa_vlm_config(vision, tokenizer, **overrides), model_class, tokenizer)


def vlm_and_processor(config: VLMambaConfig, model_class=VLMambaForConditionalGeneration, tokenizer=None):
    """(model, processor): a freshly initialised `model_class(config)` and its processor over `tokenizer` (default:
    the bundled one), with the generation settings that tokenizer needs (its pad and EOS ids, no BOS)."""
    tokenizer = tokenizer or bundled_tokenizer()
    model = model_class(config)
    if model.can_generate():
        model.generation_config.update(
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None
        )
    return model, VLMambaProcessor.from_model_config(config, tokenizer=tokenizer)


def _image_paths(split: datasets.Dataset) -> list[str]:
    return [image["path"] for image in split.cast_column("image", datasets.Image(decode=False))["image"]]


def vqa_training_set(
    questions: datasets.Dataset, descriptions: datasets.Dataset | None = None, description_repeats: int = 2, seed=0
) -> datasets.Dataset:
    """One shuffled dataset of {image, prompt, answer} rows for `VLMambaDataCollator`: every question (VQA prompt,
    `multiple_choice_answer`) and each described image `description_repeats` times (caption prompt, `caption`).
    Images stay paths, decoded when a batch is built."""
    paths, prompts = _image_paths(questions), [vqa_prompt(question) for question in questions["question"]]
    answers = list(questions["multiple_choice_answer"])
    if descriptions is not None and description_repeats:
        paths += _image_paths(descriptions) * description_repeats
        prompts += [caption_prompt()] * (len(descriptions) * description_repeats)
        answers += list(descriptions["caption"]) * description_repeats
    features = datasets.Features(
        {"image": datasets.Image(), "prompt": datasets.Value("string"), "answer": datasets.Value("string")}
    )
    rows = datasets.Dataset.from_dict({"image": paths, "prompt": prompts, "answer": answers}, features=features)
    return rows.shuffle(seed=seed)


def easy_vqa_vqa_training_set(description_repeats: int = 2, seed: int = 0) -> datasets.Dataset:
    """`vqa_training_set` over easy-VQA's train split: 38,575 questions + 3,542 descriptions × `description_repeats`."""
    questions = load_easy_vqa(("train",))["train"]
    return vqa_training_set(questions, load_easy_vqa_captions(("train",))["train"], description_repeats, seed)


__all__ = [
    "EASY_VQA_VISION_TOWERS",
    "easy_vqa_vlm",
    "easy_vqa_vlm_config",
    "easy_vqa_vqa_training_set",
    "vlm_and_processor",
    "vqa_training_set",
]
