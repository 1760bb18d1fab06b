"""Is this argument a Hub id? One answer for the whole package, from `huggingface_hub.utils.validate_repo_id`.

A Hub id here is "owner/name" as the Hub accepts it and no existing local path: "digits" (a name alone, which is
also how a local folder or a built-in dataset is named), "-x/y" and "a..b/c" (the Hub refuses them) are not;
"user/name.pkl" is (the Hub accepts dots in a name). The standard-library launcher (`mamba_multimodal_cli`) applies the
same rule without huggingface_hub; a test keeps the two in agreement.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_hub_id(name: str | os.PathLike | None) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(name, str) or name.count("/") != 1 or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def as_hub_id(name) -> str | None:
    """`name` when it reads as a Hub id ("owner/name"), else None (a local path, or nothing)."""
    return name if is_hub_id(name) else None


__all__ = ["as_hub_id", "is_hub_id"]
