"""VLM-Mamba: an attention-free vision-language model — vision tower → MLP projector → Mamba language model.

The layout follows LLaVA's in transformers: `VLMambaModel` holds `vision_tower`, `multi_modal_projector` and
`language_model` (this package's `MambaModel`, transformers' Mamba keys); `VLMambaForConditionalGeneration` adds the
`lm_head` and `generate()`. A prompt holds `image_seq_length` `<image>` tokens per image; their embeddings are
replaced by the projected image features (`masked_scatter`), so the image comes first in the causal scan and every
text token is conditioned on it. Generation keeps only the recurrent state: memory is constant in the generated
length, and after the prompt neither the image nor the prompt is seen again.

Vision towers (`VLMambaConfig.vision_config`): VisionMamba (default, attention-free: patch embedding + position
embedding + residual Mamba blocks, optionally bidirectional as Vim, arXiv 2401.09417), MambaVision (NVIDIA's hybrid
backbone, for its pretrained weights) or none ("patch": the flattened pixel patches go to the projector, as Fuyu).

Glossary: b batch, l sequence length, P image tokens per image (`image_seq_length`), d_v the tower's width, d the LM's.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    BaseModelOutputWithPoolingAndNoAttention,
    SequenceClassifierOutput,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput, TransformersKwargs, torch_compilable_check
from transformers.utils.generic import can_return_tuple

from ..configuration.configuration_mamba import MambaConfig
from ..configuration.configuration_vlm_mamba import VLMambaConfig
from ..configuration.validation import known_settings
from ..hub_mixin import HubModelMixin
from .cache_utils import LegacyCacheOutputMixin, RecurrentGenerationMixin, check_forward_kwargs, legacy_cache_names
from .mamba import (
    MambaForCausalLM,
    MambaModel,
    head_logits,
    prepare_mamba_generation_inputs,
)
from .mamba_decode import has_forward_hooks
from .modeling_mambavision import MambaVisionModel
from .modeling_vision_mamba import VisionMambaModel, _check_pixel_values
from .precision import float32_unless_native_bf16


class VLMambaPatches(nn.Module):
    """No encoder (Fuyu-style): (b, C, H, W) → `last_hidden_state` (b, P, patch² · C), patches in raster order,
    pixels row-major (also the one hidden state)."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    @can_return_tuple
    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None):
        _check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        p = self.config.patch_size
        patches = F.unfold(pixel_values, kernel_size=p, stride=p).transpose(1, 2)  #          (b, P, C · p · p)
        hidden_states = (patches,) if output_hidden_states else None
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=patches, hidden_states=hidden_states)


# ------------------------------------------------------------------------------------------ the VLM
class VLMambaMultiModalProjector(nn.Module):
    """The MLP bridge (LLaVA-1.5): Linear(d_v, d) → act → [Linear(d, d) → act →] … Linear(d, d)."""

    def __init__(self, config: VLMambaConfig):
        super().__init__()
        width = config.text_config.hidden_size
        sizes = [config.vision_hidden_size] + [width] * config.projector_num_layers
        self.linears = nn.ModuleList([nn.Linear(a, b) for a, b in itertools.pairwise(sizes)])
        self.act = ACT2FN[config.projector_hidden_act]

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        """(images, P, d_v) → (images, P, d)."""
        for i, linear in enumerate(self.linears):
            image_features = linear(image_features if i == 0 else self.act(image_features))
        return image_features


@dataclass
class VLMambaModelOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    last_hidden_state: (b, l, d) the language model's output after its final norm.
    cache: the recurrent state after the last step, with `use_cache`.
    hidden_states: with `output_hidden_states`, the language model's hidden states.
    image_hidden_states: (images, P, d) the projected image features, when `pixel_values` were given.
    """

    last_hidden_state: torch.Tensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    image_hidden_states: torch.Tensor | None = None


@dataclass
class VLMambaCausalLMOutput(LegacyCacheOutputMixin, ModelOutput):
    """
    loss: next-token cross-entropy over the labelled positions (labels -100, and image tokens, are ignored).
    logits: (b, l, vocab) float32 (or the last `logits_to_keep` positions).
    cache, hidden_states, image_hidden_states: as in `VLMambaModelOutput`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    image_hidden_states: torch.Tensor | None = None


class VLMambaPreTrainedModel(HubModelMixin, PreTrainedModel):
    config: VLMambaConfig
    config_class = VLMambaConfig
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["MambaBlock", "VisionMambaLayer", "MambaVisionBlock"]
    # bf16 weights on a CPU without native bf16 (`precision`): activations rounded to bf16 after every widened op,
    # as the fused bf16 decode step rounds them (float32 between ops would part from its tokens)
    keeps_bf16_activations = True

    def enable_vision_feature_cache(self) -> VisionFeatureCache:
        """Runs the frozen vision tower once per distinct image from now on (`VisionFeatureCache`): for training
        runs that show the same images epoch after epoch with the tower frozen. Returns the cache (its `hits`,
        `misses`); `disable_vision_feature_cache()` empties it.

        Raises:
            ValueError: a parameter of the tower requires gradients (a tower that trains changes its features).
        """
        model = self._vlm_model()
        training = [name for name, weight in model.vision_tower.named_parameters() if weight.requires_grad]
        if training:
            raise ValueError(
                f"enable_vision_feature_cache: the vision tower trains ({len(training)} parameters require grad, e.g."
                f" {training[0]!r}), so its features change from step to step; freeze it first "
                "(`model.vision_tower.requires_grad_(False)`, or a recipe that freezes vision_tower)"
            )
        model.vision_feature_cache = VisionFeatureCache()
        return model.vision_feature_cache

    def disable_vision_feature_cache(self) -> None:
        """Back to running the tower on every call; the cached features are dropped."""
        self._vlm_model().vision_feature_cache = None

    def _vlm_model(self) -> VLMambaModel:
        return self if isinstance(self, VLMambaModel) else self.model


class VisionFeatureCache:
    """A frozen vision tower's features per image, each computed once: a training run that shows the same images
    epoch after epoch (easy-VQA: ten questions or so per image) runs the tower once per distinct image.

    Images are told apart by a SHA-256 digest of their pixel values (dtype, shape and bytes), whatever the data
    pipeline; the features are computed as a frozen tower runs (evaluation mode: BatchNorm's running statistics, no
    dropout or drop-path; no gradients), over the batch's new images only, so they may differ from a call over the
    whole batch in float rounding (matrix products block differently by batch size). `VLMambaModel.
    enable_vision_feature_cache` installs one; it holds (P, d_v) per image (easy-VQA's MambaVision: 4 × 256 floats).
    """

    def __init__(self):
        self.features: dict[bytes, torch.Tensor] = {}
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self.features)

    def __call__(self, pixel_values: torch.Tensor, compute) -> torch.Tensor:
        """pixel_values (images, C, H, W) → (images, P, d_v): cached rows, and `compute(pixel_values[new])` for the
        images not seen before, run once over all of them."""
        keys = [self.digest(image) for image in pixel_values]
        first_of_new: dict[bytes, int] = {}  # an image new to the cache, repeated in the batch, is computed once
        for index, key in enumerate(keys):
            if key not in self.features:
                first_of_new.setdefault(key, index)
        new = list(first_of_new.values())
        if new:
            for index, features in zip(new, compute(pixel_values[new]), strict=True):
                self.features[keys[index]] = features
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        return torch.stack([self.features[key] for key in keys]).to(pixel_values.device)

    @staticmethod
    def digest(image: torch.Tensor) -> bytes:
        """SHA-256 of one image's dtype, shape and pixel bytes."""
        data = image.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy()
        return hashlib.sha256(f"{image.dtype}{tuple(image.shape)}".encode() + data.tobytes()).digest()


# The tower of each `vision_config.model_type`: it takes (images, C, H, W) and returns `last_hidden_state` and, with
# `output_hidden_states`, `hidden_states` (a remote-code bundle has no Auto registration to build it from).
VISION_TOWERS: dict[str, type[nn.Module]] = {
    "vision_mamba": VisionMambaModel,
    "mambavision": MambaVisionModel,
    "vlm_mamba_patch": VLMambaPatches,
}


class VLMambaModel(VLMambaPreTrainedModel):
    """Vision tower → projector → image features at the `<image>` positions → Mamba LM. Returns hidden states."""

    def __init__(self, config: VLMambaConfig):
        super().__init__(config)
        self.vision_tower = VISION_TOWERS[config.vision_config.model_type](config.vision_config)
        self.multi_modal_projector = VLMambaMultiModalProjector(config)
        self.language_model = MambaModel(config.text_config)
        self.vision_feature_cache: VisionFeatureCache | None = None  # `enable_vision_feature_cache`
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        """pixel_values (images, C, H, W) → the vision tower's `last_hidden_state` and, with `output_hidden_states`,
        `hidden_states`; `pooler_output` (images, P, d): the tower's output positions (`vision_feature_layer`'s),
        projected to the LM's width, what replaces the image tokens (LLaVA's convention; its `pooler_output` is a
        list of (P, d), which a tensor of one row per image indexes alike). kwargs: as `check_forward_kwargs`."""
        check_forward_kwargs(self, kwargs)
        vision = self.config.vision_config
        # MambaVision takes any size, but another size gives another number of image tokens than the prompt holds.
        size = vision.image_size if isinstance(vision.image_size, int) else vision.image_size[0]
        _check_pixel_values(pixel_values, vision.num_channels, size)
        if output_hidden_states is None:
            output_hidden_states = vision.output_hidden_states
        layer = self.config.vision_feature_layer
        # The processor gives float32; a model loaded in bf16 / fp16 (lmms-eval loads every model in bf16) takes the
        # dtype of its tower, as transformers' VLMs cast (Qwen2-VL's `pixel_values.type(self.visual.dtype)`), or of
        # the projector after a tower without weights (the patch tower).
        weights = itertools.chain(self.vision_tower.parameters(), self.multi_modal_projector.parameters())
        pixel_values = pixel_values.to(next(weights).dtype)
        if self.vision_feature_cache is not None and not output_hidden_states:
            features = self.vision_feature_cache(pixel_values, self._tower_features)
            last_hidden_state = None  # the tower did not run for the images it had seen
        else:
            outputs = self.vision_tower(
                pixel_values, output_hidden_states=output_hidden_states or layer != -1, return_dict=True
            )
            features, last_hidden_state = self._selected_positions(outputs), outputs.last_hidden_state
        features = features.to(next(self.multi_modal_projector.parameters()).dtype)  # the patch tower's are pixels
        return BaseModelOutputWithPooling(
            last_hidden_state=last_hidden_state,
            pooler_output=self.multi_modal_projector(features),
            hidden_states=outputs.hidden_states if output_hidden_states else None,
        )

    def _selected_positions(self, outputs) -> torch.Tensor:
        """The tower's outputs at `vision_feature_layer` as (images, P, d_v), what the projector takes."""
        layer = self.config.vision_feature_layer
        features = outputs.last_hidden_state if layer == -1 else outputs.hidden_states[layer]
        if features.dim() == 4:  # a feature map (images, d_v, h, w), MambaVision's stage 4: positions in raster order
            features = features.flatten(2).transpose(1, 2)
        return features

    def _tower_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(images, C, H, W) → (images, P, d_v) from the tower in evaluation mode, without gradients: what a frozen
        tower gives, for `VisionFeatureCache`."""
        tower, was_training = self.vision_tower, self.vision_tower.training
        tower.eval()
        try:
            with torch.no_grad():
                layer = self.config.vision_feature_layer
                return self._selected_positions(tower(pixel_values, output_hidden_states=layer != -1, return_dict=True))
        finally:
            tower.train(was_training)

    def get_placeholder_mask(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, image_features: torch.Tensor
    ) -> torch.Tensor:
        """(b, l, 1) True at the image tokens of input_ids (or, without them, where inputs_embeds (b, l, d) hold the
        image token's embedding), checked against image_features (images, P, d) as LLaVA does: a check TorchDynamo
        compiles, and whose message is formatted only when it fails."""
        if input_ids is None:
            image_token = torch.tensor(self.config.image_token_id, device=inputs_embeds.device)
            is_image = (inputs_embeds == self.get_input_embeddings()(image_token)).all(-1)
        else:
            is_image = input_ids == self.config.image_token_id  #                                           (b, l)
        count, (images, per_image) = is_image.sum(), image_features.shape[:2]
        torch_compilable_check(
            count == images * per_image,
            lambda: (
                f"input_ids hold {int(count)} image tokens (id {self.config.image_token_id}), but {images} image(s)"
                f" × {per_image} tokens each need {images * per_image}: the processor expands one <image> per image"
            ),
        )
        return is_image.unsqueeze(-1)

    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> VLMambaModelOutput:
        """input_ids: (b, l) with `image_seq_length` image tokens per image; pixel_values: (images, C, H, W), the
        images in the order their tokens appear; attention_mask: (b, l), 1 for real tokens. kwargs: as
        `cache_utils.check_forward_kwargs`."""
        check_forward_kwargs(self, kwargs)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids (b, l) or inputs_embeds (b, l, hidden_size)")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        image_features = None
        if pixel_values is not None:
            image_features = self.get_image_features(pixel_values, return_dict=True).pooler_output
            image_features = image_features.to(inputs_embeds.dtype)
            is_image = self.get_placeholder_mask(input_ids, inputs_embeds, image_features)
            inputs_embeds = inputs_embeds.masked_scatter(is_image, image_features)
        elif input_ids is not None and cache is None:
            torch_compilable_check(
                ~(input_ids == self.config.image_token_id).any(),
                "input_ids hold image tokens but no pixel_values were given",
            )
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return VLMambaModelOutput(
            last_hidden_state=outputs.last_hidden_state,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            image_hidden_states=image_features,
        )


def _loaded(part, model_class: type) -> PreTrainedModel:
    """A model instance from an instance or a path / Hub id (the Auto classes resolve our model types)."""
    return part if isinstance(part, PreTrainedModel) else model_class.from_pretrained(part)


def _fit_vocabulary(language_model: PreTrainedModel, tokens: int) -> None:
    """Grows the LM's token embeddings (and its head) to hold `tokens` ids, rounded up to the multiple its config
    pads the vocabulary to, when they hold fewer; new rows are transformers' (the old rows' mean and covariance)."""
    if tokens > language_model.get_input_embeddings().num_embeddings:
        multiple = getattr(language_model.config, "pad_vocab_size_multiple", None)
        language_model.resize_token_embeddings(tokens, pad_to_multiple_of=multiple)


def _tower_state(vision_model: PreTrainedModel, tower: nn.Module) -> dict[str, torch.Tensor]:
    """The vision model's weights under the tower's names: task heads dropped, a task class's wrapper unwrapped."""
    wanted = tower.state_dict().keys()
    state = vision_model.state_dict()
    prefix = next((p for p in ("", "vision_mamba.", "model.") if all(p + key in state for key in wanted)), None)
    if prefix is None:
        missing = sorted(k for k in wanted if k not in state)[:5]
        raise ValueError(f"the vision model has none of the tower's weights under a known prefix, e.g. {missing}")
    return {key: state[prefix + key] for key in wanted}


class VLMambaForConditionalGeneration(RecurrentGenerationMixin, VLMambaPreTrainedModel, GenerationMixin):
    """VLM-Mamba with its LM head: captioning, VQA and chat through `generate()` (greedy, sampling, beam search),
    with a recurrent state of constant size and left padding handled for batches."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embeddings.weight"}

    def __init__(self, config: VLMambaConfig):
        super().__init__(config)
        self.model = VLMambaModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_image_features(
        self, pixel_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> BaseModelOutputWithPooling:
        return self.model.get_image_features(pixel_values, **kwargs)

    @classmethod
    def from_pretrained_parts(
        cls, vision, language, processor=None, **config_kwargs
    ) -> VLMambaForConditionalGeneration:
        """A VLM from a pretrained vision model and a pretrained Mamba LM, with a fresh projector.

        Args:
            vision: a VisionMamba or MambaVision model (any of its task classes) or a path / Hub id to one
                (NVIDIA's `nvidia/MambaVision-*` repos included; their head is dropped).
            language: a `MambaForCausalLM` (this package's or transformers') or a path / Hub id to any transformers
                Mamba checkpoint.
            processor: the `VLMambaProcessor` the model will take its inputs from (`VLMambaProcessor.
                from_pretrained_parts(vision, language)`): `image_token_id` becomes its `<image>` id, generation pads
                and stops with its tokenizer's pad and EOS ids, and the token embeddings grow to the tokenizer's size
                (rounded up to the LM's `pad_vocab_size_multiple`) only if the tokenizer has outgrown them: the
                GPT-NeoX tokenizer of `state-spaces/mamba-*-hf` has 50,277 entries for 50,280 rows, so `<image>`
                (50,277) fits and nothing is resized.
            config_kwargs: the other `VLMambaConfig` fields (`image_token_id`, projector settings, ...).
        """
        vision_model = _loaded(vision, AutoModel)
        language_model = _loaded(language, MambaForCausalLM)
        if processor is not None:
            _fit_vocabulary(language_model, len(processor.tokenizer))
            config_kwargs.setdefault("image_token_id", processor.image_token_id)
        tie = language_model.config.tie_word_embeddings
        config = VLMambaConfig(
            vision_config=known_settings(type(vision_model.config), vision_model.config.to_dict()),
            text_config=known_settings(MambaConfig, language_model.config.to_dict()),
            **{"tie_word_embeddings": tie, **config_kwargs},
        )
        model = cls(config)
        tower = model.model.vision_tower
        tower.load_state_dict(_tower_state(vision_model, tower), strict=True)
        model.model.language_model.load_state_dict(language_model.backbone.state_dict())
        model.lm_head.load_state_dict(language_model.lm_head.state_dict())
        if config.tie_word_embeddings:
            model.tie_weights()
        if processor is not None:
            tokenizer = processor.tokenizer
            model.generation_config.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        return model.eval()

    def _prepare_generation_config(self, generation_config, **kwargs):
        """generate()'s settings, with the image placeholder suppressed: it is an input-only token (never a label),
        so neither decoding nor prompt lookup, which drafts n-grams copied from the prompt, may emit it; a drafted
        <image> in the prompt's pass would ask for an image that is not there."""
        generation_config, model_kwargs = super()._prepare_generation_config(generation_config, **kwargs)
        suppressed = list(generation_config.suppress_tokens or [])  # a copy of the model's settings: ours to change
        if self.config.image_token_id not in suppressed:
            generation_config.suppress_tokens = [*suppressed, self.config.image_token_id]
        return generation_config, model_kwargs

    def prepare_inputs_for_generation(
        self, input_ids, pixel_values=None, attention_mask=None, is_first_iteration=False, **kwargs
    ):
        """The LM's preparation; the image goes in with the prompt only (afterwards it lives in the state)."""
        model_inputs = prepare_mamba_generation_inputs(
            super().prepare_inputs_for_generation, input_ids, attention_mask, is_first_iteration, **kwargs
        )
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs

    @float32_unless_native_bf16
    @can_return_tuple
    @legacy_cache_names
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> VLMambaCausalLMOutput:
        """Inputs as `VLMambaModel`; labels: (b, l), shifted inside, -100 ignored (and so are image tokens).
        kwargs: the loss's as `MambaForCausalLM` (`num_items_in_batch`, `shift_labels`, `ignore_index`)."""
        loss_kwargs = check_forward_kwargs(self, kwargs)
        language_model = self.model.language_model
        if output_hidden_states is None:
            output_hidden_states = language_model.config.output_hidden_states
        if labels is None and pixel_values is None and not output_hidden_states and not has_forward_hooks(self.model):
            # a decode step on CPU: the language model's stack and this head in one call of the fused kernel
            logits = language_model.decode_step_logits(self.lm_head, input_ids, inputs_embeds, cache, attention_mask)
            if logits is not None:
                kept = cache if language_model.keeps_cache(use_cache) else None
                return VLMambaCausalLMOutput(logits=logits, cache=kept)
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        backend = getattr(self.config.text_config, "scan_backend", "auto")
        logits = head_logits(self.lm_head, outputs.last_hidden_state, logits_to_keep, backend)
        loss = None
        if labels is not None:
            if input_ids is not None:  # an image token is never a target
                is_image = input_ids == self.config.image_token_id
                labels = labels.masked_fill(is_image, -100)
                if "shift_labels" in loss_kwargs:  # the target of position t is token t + 1
                    shifted = F.pad(is_image[:, 1:], (0, 1))
                    loss_kwargs["shift_labels"] = loss_kwargs["shift_labels"].masked_fill(shifted, -100)
            vocab_size = self.config.text_config.vocab_size
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=vocab_size, **loss_kwargs)
        return VLMambaCausalLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            image_hidden_states=outputs.image_hidden_states,
        )


class VLMambaForImageTextClassification(VLMambaPreTrainedModel):
    """Image + text classification (or regression) on VLM-Mamba, for any text length.

    `config.fusion_method`:
    - "concat" (early fusion): the image's P projected features, then the text's embeddings, through the Mamba stack;
      the last real position, which has seen the image and all of the text, is classified;
    - "add": the image's mean feature added to every text embedding, then the stack over the text;
    - "mlp" (late fusion): an MLP over [mean image feature ; the stack's last real text position].
    input_ids hold the text only (no image tokens); labels follow `config.problem_type` as in transformers
    (one label → regression, integer labels → single-label, float labels → multi-label).
    """

    accepts_loss_kwargs = False  # a mean per batch (Trainer divides by the accumulation steps): MSE has no token count

    def __init__(self, config: VLMambaConfig):
        super().__init__(config)
        self.loss_type = "ForSequenceClassification"
        self.num_labels = config.num_labels
        width = config.text_config.hidden_size
        self.model = VLMambaModel(config)
        in_features = 2 * width if config.fusion_method == "mlp" else width
        self.fusion = nn.Sequential(nn.Linear(in_features, width), nn.GELU()) if config.fusion_method == "mlp" else None
        self.score = nn.Linear(width, config.num_labels)
        self.post_init()

    @float32_unless_native_bf16
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        """input_ids: (b, l) text; pixel_values: (b, C, H, W), one image per row; attention_mask: (b, l), left or
        right padding. Returns logits (b, num_labels). kwargs: as `cache_utils.check_forward_kwargs`."""
        check_forward_kwargs(self, kwargs)
        if input_ids is None or pixel_values is None:
            raise ValueError("VLMambaForImageTextClassification needs both input_ids (b, l) and pixel_values")
        torch_compilable_check(
            ~(input_ids == self.config.image_token_id).any(),
            "input_ids must hold the text only: the classifier places the image itself",
        )
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(f"one image per row: {input_ids.shape[0]} texts, {pixel_values.shape[0]} images")
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        image = self.model.get_image_features(pixel_values, return_dict=True).pooler_output  #     (b, P, d)
        text = self.model.get_input_embeddings()(input_ids)  #                                     (b, l, d)
        if self.config.fusion_method == "concat":
            text = torch.cat([image.to(text.dtype), text], dim=1)
            mask = torch.cat([torch.ones(image.shape[:2], dtype=mask.dtype, device=mask.device), mask], dim=1)
            text, mask = _padding_first(text, mask)  # pads between image and text would blank the conv's window
        elif self.config.fusion_method == "add":
            text = text + image.mean(1, keepdim=True).to(text.dtype)
        outputs = self.model.language_model(
            inputs_embeds=text,
            attention_mask=mask,
            use_cache=False,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        # (b, d); the LM's last state is float32 with residual_in_fp32, the heads may be bfloat16
        pooled = _last_real_position(outputs.last_hidden_state, mask).to(self.score.weight.dtype)
        if self.fusion is not None:
            pooled = self.fusion(torch.cat([image.mean(1).to(pooled.dtype), pooled], dim=-1))
        logits = self.score(pooled)
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


def _padding_first(embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves each row's padded positions of embeds (b, l, d) and mask (b, l) to the front, keeping the order of the
    real ones: a pad is invisible to the scan (Δ = 0) but not to the causal conv, which would see zeros in its window
    instead of the tokens before the pad."""
    order = torch.sort(mask.to(torch.uint8), dim=1, stable=True).indices  #                             (b, l)
    return embeds.gather(1, order.unsqueeze(-1).expand_as(embeds)), mask.gather(1, order)


def _last_real_position(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """hidden_states (b, l, d) at each row's last position whose mask is 1: (b, d). Works for left and right padding."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, -1).amax(dim=1)  #                                       (b,)
    torch_compilable_check((last >= 0).all(), "attention_mask has a row with no real token")
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last]


__all__ = [
    "VLMambaForConditionalGeneration",
    "VLMambaForImageTextClassification",
    "VLMambaModel",
    "VLMambaPreTrainedModel",
]
