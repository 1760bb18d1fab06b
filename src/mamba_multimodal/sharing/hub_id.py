"""Is this argument a Hub id? One answer for the package: "owner/name" as `huggingface_hub.utils.validate_repo_id`
accepts it, and no existing local path. So "digits" (a name alone: a local folder or a built-in dataset too), "-x/y"
and "a..b/c" are not; "user/name.pkl" is. `mamba_multimodal_cli` applies the same rule without huggingface_hub."""

from __future__ import annotations

from pathlib import Path


def as_hub_id(name) -> str | None:
    """`name` when it reads as a Hub id ("owner/name"), else None (a local path, or nothing)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(name, str) or name.count("/") != 1 or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


__all__ = ["as_hub_id"]
