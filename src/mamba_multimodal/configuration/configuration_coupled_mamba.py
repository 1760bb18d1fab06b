"""Coupled Mamba configuration (Li et al., "Coupled Mamba: Enhanced Multi-modal Fusion with Coupled State Space
Model", NeurIPS 2024, arXiv 2405.18014).

The defaults are the paper's MOSEI model (Sec. 4.1): three modalities with MMSA's features (BERT text 768-d, COVAREP
audio 74-d, Facet vision 35-d), width 128, state 64, expansion 2, conv kernel 4, 3 layers. Field names follow
transformers' `MambaConfig` (`hidden_size`, `state_size`, `expand`, `conv_kernel`, `time_step_rank`, ...).

Coupling of the modalities' states (arXiv 2405.18014, Sec. 3.2 Eq. 6 and Algorithm 1; S^m_t = exp(Δ^m_t A^m)):

    h^m_t = exp(Δ^m_t A^m) ⊙ c_{t-1} + Δ^m_t B^m_t x^m_t        y^m_t = C^m_t · h^m_t + D^m x^m_t
    c_t = Σ_m h^m_t ("sum", Eq. 6 as written)  |  (1/M) Σ_m h^m_t ("mean")  |  c^m_t = h^m_t ("none": no coupling)
"""

import math
from typing import Literal

from .validation import (
    Coupling,
    Ints,
    Number,
    ScanConfig,
    check_positive_ints,
    check_positive_numbers,
    check_rates,
    is_positive_int,
    strict_config,
)

DEFAULT_MODALITIES = ("text", "audio", "vision")
DEFAULT_INPUT_SIZES = (768, 74, 35)  # MMSA's CMU-MOSEI features: BERT, COVAREP, Facet


def split_modalities(modalities, input_sizes) -> tuple[list, list]:
    """`input_sizes` as a {name: size} dict names the modalities itself; otherwise both are parallel sequences."""
    if isinstance(input_sizes, dict):
        if modalities is not None and list(modalities) != list(input_sizes):
            raise ValueError(
                f"modalities {list(modalities)!r} disagree with the keys of input_sizes {list(input_sizes)!r}; "
                "pass input_sizes as a dict alone, or both as lists"
            )
        return list(input_sizes), list(input_sizes.values())
    modalities = DEFAULT_MODALITIES if modalities is None else modalities
    as_list = lambda value: list(value) if isinstance(value, (list, tuple)) else value  # noqa: E731
    return as_list(modalities), as_list(input_sizes)


def validate_modalities(modalities, sizes) -> None:
    """Raises ValueError unless `modalities` is a list of distinct identifiers and `sizes` one positive int each."""
    if not isinstance(modalities, list) or not modalities:
        raise ValueError(f"modalities must be a non-empty list of names, got {modalities!r}")
    for name in modalities:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"modalities must be Python identifiers (they name the inputs), got {name!r}")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct, got {modalities!r}")
    if not isinstance(sizes, list) or len(sizes) != len(modalities):
        raise ValueError(f"input_sizes must have one entry per modality ({len(modalities)}), got {sizes!r}")
    if not all(is_positive_int(size) for size in sizes):
        raise ValueError(f"input_sizes must be positive integers, got {sizes!r}")


@strict_config
class CoupledMambaConfig(ScanConfig):
    r"""Configuration of a Coupled Mamba model; the defaults build the paper's CMU-MOSEI regressor.

    Args:
        modalities (`list[str]`): modality names, in the order the model stacks them. Each name `m` gives the model
            inputs `{m}_features` (b, l, input size) and `{m}_attention_mask` (b, l). Default text, audio, vision
            (the column names of `training.data.load_mmsa`).
        input_sizes (`list[int]` or `dict[str, int]`): feature size per modality (default 768, 74, 35: MMSA's MOSEI
            features). A dict `{"text": 768, ...}` sets `modalities` too.
        hidden_size (`int`): width d of every modality's stream after its input projection (paper: 128).
        state_size (`int`): SSM state size n (paper: 64, best of 32/64/128 in Table 10).
        expand (`int`): mixer inner width / hidden size (paper: 2).
        conv_kernel (`int`): causal depthwise conv kernel (paper: 4).
        num_hidden_layers (`int`): coupled layers, each with one Mamba block per modality (paper: 3, Table 14).
        time_step_rank (`int` or `"auto"`): rank r of the Δ projection. The paper gives "Δ = d_state/8" (Table 9
            sweeps d_state/16, /8, /4), the released code uses ceil(d_model/8) = 16, upstream Mamba ceil(d_model/16).
            "auto" follows the paper, ceil(state_size / 8) = 8 at the defaults (which is also upstream Mamba's rank
            for d_model 128); pass 16 to match the released code. Stored resolved, as an int.
        coupling (`str`): how the modalities' states are coupled in every layer.
            - "sum": Eq. 6 exactly, every modality continues from c = Σ_m h^m;
            - "mean": every modality continues from the mean (1/M) Σ_m h^m;
            - "none": every modality continues from its own state (M independent Mamba chains; the ablation).
            Default "mean", chosen from measurements (`bench/bench_coupled.py`, `bench/results/bench_coupled.json`):
            - stability: with "sum" the carried state is multiplied by P_t = Σ_m exp(Δ^m_t A^m) ∈ (0, M] at every
              step, and at Mamba's initialisation (Δ ∈ [0.001, 0.1], |A| from 1) P_t ≈ M in the slow state channels.
              The untrained MOSEI-size model's hidden states reach ~9e17 at L = 50 with "sum" (~4 with "mean" or
              "none") and its logits are inf/NaN at L = 500, MMSA's unaligned audio/vision length. "mean" keeps
              P_t ∈ (0, 1], as bounded as Mamba itself;
            - accuracy: on the bench's cross-modal temporal task (the label is the lagged text-audio correlation),
              held-out MAE / Acc-2 are 0.50 / 0.91 with "mean", 1.35 / 0.64 with "sum" and 1.37 / 0.64 with "none"
              (predicting 0 gives MAE 1.54): "sum" learns no more than independent chains, "mean" learns the task.
        pooling (`str`): how each modality's sequence becomes one vector: "mean" (over its real steps, default),
            "max" (over its real steps, as the released code) or "last" (its last real step).
        fusion (`str`): how the pooled modality vectors become one: "concat" (default, M·d features), "mean", or
            "weighted" (softmax-normalised learnable weight per modality, as the released code).
        head_hidden_size (`int`): hidden width of the two-layer head; 0 for a single Linear.
        head_activation (`str`): the head's activation, "gelu" (default), "relu" (the released code's
            `RegressionHead`: Linear(128, 64) → ReLU → Linear(64, 1)), "tanh" or "silu".
        classifier_dropout (`float`): dropout before the head's output layer.
        regression_loss (`str`): "l1" (the paper's loss for the sentiment score) or "mse".
        use_bias (`bool`): bias in the mixers' in_proj and out_proj. use_conv_bias (`bool`): bias in their conv.
        hidden_act (`str`): the conv activation; Mamba's "silu".
        layer_norm_epsilon (`float`): eps of the LayerNorms (Algorithm 1 normalises with LayerNorm).
        time_step_min, time_step_max, time_step_floor, time_step_scale, time_step_init_scheme: Mamba's Δ
            initialisation (as in transformers' `MambaConfig`).
        rescale_prenorm_residual (`bool`): divide out_proj's initial weights by √num_hidden_layers.
        initializer_range (`float`): std of the normal init of the other Linear weights.
        scan_backend (`str`): path of the coupled scan (see `validation.ScanConfig`).
        inference_chunk_tokens (`int` or `None`): when no gradient is recorded, a batch of b sequences goes through
            the layers in pieces of max(1, inference_chunk_tokens // b) time steps, each piece continuing from the
            conv windows and coupled states the piece before left. The outputs are those of one pass over the whole
            sequence (to float rounding), but the layers' intermediates (d_in wide, per modality) are held for one
            piece at a time, so their memory stays under a fixed budget instead of growing with l; only the
            (b, M, l, d) output grows, and the classifier does not keep even that. Default 1024 positions (32 steps
            at batch 32, whole sequences up to 1024 steps for one clip). Measured at the MOSEI size, batch 32,
            L = 500, 2 threads: 1.03 s and +50 MB per classifier call with 1024, 1.02 s and +67 MB with 2048, 1.34 s
            and +305 MB in one piece (None). None runs every sequence in one piece.
        num_labels (`int`): 1 (default) for the sentiment score; 2, 3 or 7 classes for classification.
        problem_type (`str`): as in transformers; by default regression for one label, else from the labels' dtype.

    Every field is validated at construction and again whenever it is assigned (`validation.strict_config`): a wrong
    value (NaN and ±inf included) raises `ValueError` naming the field and what is allowed, and changes nothing.
    """

    model_type = "coupled_mamba"

    modalities: list[str] | tuple[str, ...] | None = None
    input_sizes: Ints | dict[str, int] = DEFAULT_INPUT_SIZES
    hidden_size: int = 128
    state_size: int = 64
    expand: int = 2
    conv_kernel: int = 4
    num_hidden_layers: int = 3
    time_step_rank: int | Literal["auto"] = "auto"
    coupling: Coupling = "mean"
    pooling: Literal["mean", "max", "last"] = "mean"
    fusion: Literal["concat", "mean", "weighted"] = "concat"
    head_hidden_size: int = 64
    head_activation: Literal["gelu", "relu", "tanh", "silu"] = "gelu"
    classifier_dropout: Number = 0.0
    regression_loss: Literal["l1", "mse"] = "l1"
    use_bias: bool = False
    use_conv_bias: bool = True
    hidden_act: Literal["silu", "swish"] = "silu"
    layer_norm_epsilon: Number = 1e-5
    time_step_min: Number = 0.001
    time_step_max: Number = 0.1
    time_step_floor: Number = 1e-4
    time_step_scale: Number = 1.0
    time_step_init_scheme: Literal["random", "constant"] = "random"
    rescale_prenorm_residual: bool = False
    initializer_range: Number = 0.02
    inference_chunk_tokens: int | None = 1024

    def __post_init__(self, **kwargs):
        self.modalities, self.input_sizes = split_modalities(self.modalities, self.input_sizes)
        if self.time_step_rank == "auto" and is_positive_int(self.state_size):
            self.time_step_rank = math.ceil(self.state_size / 8)  # the paper's "Δ = d_state/8"
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 1  # the sentiment score
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------------------------ derived sizes
    @property
    def intermediate_size(self) -> int:
        """Inner width d_in of every mixer: `expand * hidden_size`."""
        return self.expand * self.hidden_size

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def modality_input_sizes(self) -> dict[str, int]:
        """{modality: feature size}, in model order."""
        return dict(zip(self.modalities, self.input_sizes, strict=True))

    @property
    def fused_size(self) -> int:
        """Width of the fused (pooled) features the head reads: M·d for "concat", d otherwise."""
        return self.hidden_size * (self.num_modalities if self.fusion == "concat" else 1)

    # ----------------------------------------------------------------------------------------- validation
    def validate_sizes(self):
        validate_modalities(self.modalities, self.input_sizes)
        check_positive_ints(self, "hidden_size", "state_size", "expand", "num_hidden_layers", "time_step_rank")
        if not is_positive_int(self.conv_kernel) or self.conv_kernel < 2:
            raise ValueError(f"conv_kernel must be an integer >= 2 (Mamba: 4), got {self.conv_kernel!r}")
        chunk = self.inference_chunk_tokens
        if chunk is not None and not is_positive_int(chunk):
            raise ValueError(f"inference_chunk_tokens must be a positive integer or None, got {chunk!r}")
        if isinstance(self.head_hidden_size, bool) or self.head_hidden_size < 0:
            raise ValueError(
                f"head_hidden_size must be a non-negative integer (0: no hidden layer), got {self.head_hidden_size!r}"
            )

    def validate_problem_type(self):  # transformers 5.25 declares it as a string annotation, which strict skips
        allowed = (None, "regression", "single_label_classification", "multi_label_classification")
        if self.problem_type not in allowed:
            raise ValueError(f"problem_type must be one of {allowed}, got {self.problem_type!r}")

    def validate_numbers(self):
        check_rates(self, "classifier_dropout")
        check_positive_numbers(self, "layer_norm_epsilon", "initializer_range")
        check_positive_numbers(self, "time_step_min", "time_step_max", "time_step_floor", "time_step_scale")
        if self.time_step_min > self.time_step_max:
            raise ValueError(
                f"time_step_min ({self.time_step_min}) must not exceed time_step_max ({self.time_step_max})"
            )


__all__ = ["CoupledMambaConfig", "split_modalities", "validate_modalities"]
