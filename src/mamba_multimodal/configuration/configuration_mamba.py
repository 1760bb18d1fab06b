"""The Mamba language model's configuration: transformers' `MambaConfig` plus `scan_backend`.

Same model_type ("mamba"), fields and defaults, so a `config.json` written for transformers' class loads here and one
written here loads there (`scan_backend` is one more attribute to it). VLM-Mamba's `text_config` is one.
"""

from transformers import MambaConfig as TransformersMambaConfig

from .validation import ScanConfig, strict_config


@strict_config
class MambaConfig(ScanConfig, TransformersMambaConfig):
    r"""transformers' `MambaConfig` (see its documentation) with `scan_backend`, the selective-scan path ("auto",
    "cuda", "cpu", "pytorch" or "reference"), as every configuration of this package that scans."""


__all__ = ["MambaConfig"]
