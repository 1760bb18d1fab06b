"""The Mamba language model's configuration: transformers' `MambaConfig` plus `scan_backend`.

Same model_type ("mamba"), fields and defaults, so a `config.json` written for transformers' class loads here and one
written here loads there (`scan_backend` is one more attribute to it). VLM-Mamba's `text_config` is one.
"""

from transformers import MambaConfig as TransformersMambaConfig

from .validation import ScanConfig, check_positive_ints, check_positive_numbers, strict_config


@strict_config
class MambaConfig(ScanConfig, TransformersMambaConfig):
    r"""transformers' `MambaConfig` (see its documentation) with `scan_backend`, the selective-scan path ("auto",
    "cuda", "cpu", "pytorch" or "reference"), as every configuration of this package that scans. Its sizes are
    validated as the other configurations' (transformers' class takes `hidden_size=-64` and fails in the model)."""

    def validate_sizes(self):
        check_positive_ints(self, "vocab_size", "hidden_size", "state_size", "num_hidden_layers", "expand")
        check_positive_ints(self, "conv_kernel", "time_step_rank")
        check_positive_numbers(self, "layer_norm_epsilon")


__all__ = ["MambaConfig"]
