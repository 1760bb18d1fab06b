"""Pushing a saved folder to the Hub in one commit (`HfApi.upload_folder`), after checks that fail in one line."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..registry import FAMILIES
from .card import EVAL_RESULTS, SNIPPET_MODEL_ID

# What a saved folder may hold that is not the model: hidden and staging folders, Trainer checkpoints, TensorBoard runs
# (the hidden .eval_results folder, the measured metrics the Hub shows, is uploaded).
NOT_UPLOADED = [".*", "checkpoint-*", "runs*"]


class HubError(Exception):
    """A sharing mistake (offline, not logged in, a folder that is not a saved model): one line that says what to do."""


def check_can_push(token: str | bool | None = None) -> str:
    """The user name the Hub knows the token as; raises HubError with one line when pushing cannot work (offline
    mode, no token, a token the Hub refuses, the Hub unreachable), so a run can fail before it trains.

    Raises:
        HubError: what is wrong and what to do.
    """
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        raise HubError("cannot push: HF_HUB_OFFLINE is set (unset it, or save locally and push later)")
    token = get_token() if token in (None, True) else token
    if not token:
        raise HubError("cannot push: not logged in to the Hub (run `hf auth login` or set HF_TOKEN)")
    try:
        return HfApi().whoami(token=token)["name"]
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", "?")
        raise HubError(f"cannot push: the Hub refused the token (HTTP {status}); log in again") from None
    except Exception as error:  # no connection: httpx's ConnectError / timeouts (not OSErrors), or an OSError
        reason = type(error).__name__
        raise HubError(f"cannot push: the Hub at {constants.ENDPOINT} is unreachable ({reason})") from None


def check_repo_id(repo_id: str) -> str:
    """`repo_id` as the Hub accepts it ("name" or "owner/name"), checked before the Hub is asked (which would answer
    an invalid id with an error that reads like a connection failure, or not at all offline).

    Raises:
        HubError: naming the id and the form expected.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = str(error).strip().splitlines()[0]
        raise HubError(f"REPO_ID: {repo_id!r} is not a valid Hub repo id, USER/NAME ({reason})") from None
    return repo_id


def check_folder(folder: str | os.PathLike) -> Path:
    """The folder, checked to hold a saved model with its bundle.

    Raises:
        HubError: no config.json, no weights, or a config.json without `auto_map` (saved without this package).
    """
    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file():
        raise HubError(f"{folder}: no config.json (not a folder written by save_pretrained)")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise HubError(f"{folder}: no model weights (*.safetensors)")
    settings = json.loads(config.read_text())
    family = next((f for f in FAMILIES.values() if f.model_type == settings.get("model_type")), None)
    if family is not None and family.register_with_auto:
        auto_map = settings.get("auto_map", {})
        missing = sorted({f"{reference.split('.')[0]}.py" for reference in auto_map.values()} - set(os.listdir(folder)))
        if not auto_map or missing:
            what = ", ".join(missing) or "auto_map in config.json"
            raise HubError(
                f"{folder}: the remote-code bundle is incomplete (missing {what}); load the model with "
                "mamba_multimodal and save_pretrained it again"
            )
    return folder


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
):
    """Uploads every file of a saved folder (not `NOT_UPLOADED`) to the Hub model repo `repo_id` in one commit (the
    repo, and the branch `revision`, created if missing), through `HfApi.upload_folder`. The model card's snippets
    load `repo_id` in the uploaded copy; the folder itself is left as it is.

    Returns:
        huggingface_hub's `CommitInfo` (its `commit_url`, `oid`).

    Raises:
        HubError: an invalid `repo_id`, the folder is not a complete saved model, or the Hub cannot be used (see
            `check_can_push`).
    """
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    folder = check_folder(folder).resolve()
    check_can_push(token)
    api = HfApi()
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type", "model")
    with tempfile.TemporaryDirectory() as upload:
        # The folder as symbolic links, README.md pointed at the repo: upload_folder uploads one folder as it is.
        ignored = shutil.ignore_patterns(*NOT_UPLOADED, "README.md")
        shutil.copytree(folder, upload, copy_function=os.symlink, dirs_exist_ok=True,
                        ignore=lambda directory, names: ignored(directory, names) - {EVAL_RESULTS})  # fmt: skip
        if (folder / "README.md").exists():
            card = SNIPPET_MODEL_ID.sub(f'model_id = "{repo_id}"', (folder / "README.md").read_text())
            Path(upload, "README.md").write_text(card)
        return api.upload_folder(
            repo_id=repo_id, folder_path=upload, commit_message=commit_message or f"Upload {model_type}",
            commit_description=commit_description, token=token, revision=revision, create_pr=create_pr,
        )  # fmt: skip


__all__ = ["NOT_UPLOADED", "HubError", "check_can_push", "check_folder", "check_repo_id", "push_folder"]
