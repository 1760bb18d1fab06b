"""Coupled Mamba configuration (Li et al., "Coupled Mamba: Enhanced Multi-modal Fusion with Coupled State Space
Model", NeurIPS 2024, arXiv 2405.18014).

The defaults are the paper's MOSEI model (Sec. 4.1): three modalities with MMSA's features (BERT text 768-d, COVAREP
audio 74-d, Facet vision 35-d), width 128, state 64, expansion 2, conv kernel 4, 3 layers. Field names follow
transformers' `MambaConfig` (`hidden_size`, `state_size`, `expand`, `conv_kernel`, `time_step_rank`, ...).

Coupling of the modalities' states (arXiv 2405.18014, Sec. 3.2 Eq. 6 and Algorithm 1; S^m_t = exp(Δ^m_t A^m)):

    h^m_t = exp(Δ^m_t A^m) ⊙ c_{t-1} + Δ^m_t B^m_t x^m_t        y^m_t = C^m_t · h^m_t + D^m x^m_t
    c_t = Σ_m h^m_t ("sum", Eq. 6 as written)  |  (1/M) Σ_m h^m_t ("mean")  |  c^m_t = h^m_t ("none": no coupling)
"""

from __future__ import annotations

import math
import numbers

from transformers.configuration_utils import PreTrainedConfig

from .validation import ValidatedOnAssignment, is_finite_number, is_positive_int

DEFAULT_MODALITIES = ("text", "audio", "vision")
DEFAULT_INPUT_SIZES = (768, 74, 35)  # MMSA's CMU-MOSEI features: BERT, COVAREP, Facet
COUPLINGS = ("sum", "mean", "none")  # = ssm.COUPLINGS, without importing torch code here
POOLINGS = ("mean", "max", "last")
FUSIONS = ("concat", "mean", "weighted")
REGRESSION_LOSSES = ("l1", "mse")
HEAD_ACTIVATIONS = ("gelu", "relu", "tanh", "silu")
TIME_STEP_INIT_SCHEMES = ("random", "constant")
SCAN_BACKENDS = ("auto", "cuda", "cpu", "pytorch", "reference")  # = ssm.BACKENDS
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


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


def _check_problem_type(problem_type) -> None:
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")


class CoupledMambaConfig(ValidatedOnAssignment, PreTrainedConfig):
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
        scan_backend (`str`): path of the coupled scan, one of "auto", "cuda", "cpu", "pytorch", "reference" (see
            `modeling/ssm.py`; "pytorch" forces the traceable plain-PyTorch path).
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

    Every field is validated at construction and again whenever it is assigned (`validation.py`): a wrong value (NaN
    and ±inf included) raises `ValueError` naming the field, the value and what is allowed, and changes nothing.
    """

    model_type = "coupled_mamba"
    validated_fields = frozenset({"problem_type"})  # transformers' field, with our rule; __init__'s are added

    def __init__(
        self,
        modalities=None,
        input_sizes=DEFAULT_INPUT_SIZES,
        hidden_size=128,
        state_size=64,
        expand=2,
        conv_kernel=4,
        num_hidden_layers=3,
        time_step_rank="auto",
        coupling="mean",
        pooling="mean",
        fusion="concat",
        head_hidden_size=64,
        head_activation="gelu",
        classifier_dropout=0.0,
        regression_loss="l1",
        use_bias=False,
        use_conv_bias=True,
        hidden_act="silu",
        layer_norm_epsilon=1e-5,
        time_step_min=0.001,
        time_step_max=0.1,
        time_step_floor=1e-4,
        time_step_scale=1.0,
        time_step_init_scheme="random",
        rescale_prenorm_residual=False,
        initializer_range=0.02,
        scan_backend="auto",
        inference_chunk_tokens=1024,
        **kwargs,
    ):
        self.modalities, self.input_sizes = split_modalities(modalities, input_sizes)
        self.hidden_size = hidden_size
        self.state_size = state_size
        self.expand = expand
        self.conv_kernel = conv_kernel
        self.num_hidden_layers = num_hidden_layers
        if time_step_rank == "auto" and is_positive_int(state_size):
            time_step_rank = math.ceil(state_size / 8)  # the paper's "Δ = d_state/8"
        self.time_step_rank = time_step_rank
        self.coupling = coupling
        self.pooling = pooling
        self.fusion = fusion
        self.head_hidden_size = head_hidden_size
        self.head_activation = head_activation
        self.classifier_dropout = classifier_dropout
        self.regression_loss = regression_loss
        self.use_bias = use_bias
        self.use_conv_bias = use_conv_bias
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = layer_norm_epsilon
        self.time_step_min = time_step_min
        self.time_step_max = time_step_max
        self.time_step_floor = time_step_floor
        self.time_step_scale = time_step_scale
        self.time_step_init_scheme = time_step_init_scheme
        self.rescale_prenorm_residual = rescale_prenorm_residual
        self.initializer_range = initializer_range
        self.scan_backend = scan_backend
        self.inference_chunk_tokens = inference_chunk_tokens
        self._validate_fields()
        if kwargs.get("id2label") is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = 1  # the sentiment score
        _check_problem_type(kwargs.get("problem_type"))
        super().__init__(**kwargs)

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
    def _validate_fields(self) -> None:
        validate_modalities(self.modalities, self.input_sizes)
        for name in ("hidden_size", "state_size", "expand", "num_hidden_layers", "time_step_rank"):
            if not is_positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not is_positive_int(self.conv_kernel) or self.conv_kernel < 2:
            raise ValueError(f"conv_kernel must be an integer >= 2 (Mamba: 4), got {self.conv_kernel!r}")
        choices = {
            "coupling": COUPLINGS,
            "pooling": POOLINGS,
            "fusion": FUSIONS,
            "regression_loss": REGRESSION_LOSSES,
            "hidden_act": ("silu", "swish"),
            "head_activation": HEAD_ACTIVATIONS,
            "time_step_init_scheme": TIME_STEP_INIT_SCHEMES,
            "scan_backend": SCAN_BACKENDS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        chunk = self.inference_chunk_tokens
        if chunk is not None and not is_positive_int(chunk):
            raise ValueError(f"inference_chunk_tokens must be a positive integer or None, got {chunk!r}")
        head = self.head_hidden_size
        if isinstance(head, bool) or not isinstance(head, numbers.Integral) or head < 0:
            raise ValueError(f"head_hidden_size must be a non-negative integer (0: no hidden layer), got {head!r}")
        if not is_finite_number(self.classifier_dropout) or not 0 <= self.classifier_dropout < 1:
            raise ValueError(f"classifier_dropout must be a number in [0, 1), got {self.classifier_dropout!r}")
        for name in ("use_bias", "use_conv_bias", "rescale_prenorm_residual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        self._validate_time_step()
        _check_problem_type(self.problem_type)  # None (the class default) while __init__ runs
        for name in ("layer_norm_epsilon", "initializer_range"):
            value = getattr(self, name)
            if not is_finite_number(value) or value <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")

    def _validate_time_step(self) -> None:
        for name in ("time_step_min", "time_step_max", "time_step_floor", "time_step_scale"):
            value = getattr(self, name)
            if not is_finite_number(value) or value <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
        if self.time_step_min > self.time_step_max:
            raise ValueError(
                f"time_step_min ({self.time_step_min}) must not exceed time_step_max ({self.time_step_max})"
            )


__all__ = ["COUPLINGS", "FUSIONS", "POOLINGS", "CoupledMambaConfig", "split_modalities", "validate_modalities"]
