"""Saving that shares, as a hook: `save_pretrained` and `push_to_hub` of this package's models and processors call
the sharing layer registered here (`mamba_multimodal.sharing` registers itself on `import mamba_multimodal`), which
writes what another machine needs to load the folder: the remote-code bundle and its `auto_map`, the processor, a
model card. The model never imports that layer.

This file travels in the remote-code bundle too, where nothing registers: there saving and pushing are transformers'
own (which copies the bundle's `.py` files again, as for any remote code).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError, safe_open

# save_pretrained(push_to_hub=True, ...) options that belong to the push, not to the save.
_PUSH_OPTIONS = ("repo_id", "commit_message", "commit_description", "private", "revision", "create_pr", "token")
_sharing = None


def register_sharing(sharing) -> None:
    """Makes `sharing` (with `complete_folder`, `complete_processor_folder`, `push_folder`, `add_card_tags`, as
    `mamba_multimodal.sharing` has them) what every later save calls."""
    global _sharing
    _sharing = sharing


def _split_push_options(save_directory, kwargs: dict) -> dict:
    """Removes the push options from save_pretrained's `kwargs` and returns them, `repo_id` defaulting to the folder
    name as in transformers."""
    options = {name: kwargs.pop(name) for name in _PUSH_OPTIONS if name in kwargs and name != "token"}
    options["token"] = kwargs.get("token")  # the save may use it too (transformers passes it on)
    options.setdefault("repo_id", os.path.basename(os.path.normpath(str(save_directory))))
    return options


@contextlib.contextmanager
def weights_named_on_error(source, subfolder: str = ""):
    """safetensors' "Error while deserializing header: ..." names no file: re-raised as an OSError naming the
    `.safetensors` file of the local folder `source` that cannot be read (else `source` itself) as truncated or
    corrupt."""
    try:
        yield
    except SafetensorError as error:
        folder = Path(source) / subfolder if isinstance(source, (str, os.PathLike)) else None
        files = sorted(folder.glob("*.safetensors")) if folder is not None and folder.is_dir() else []
        broken = next((path for path in files if not _readable(path)), source)
        raise OSError(f"{broken}: truncated or corrupt safetensors file ({error}); save or download it again") from None


def _readable(path: Path) -> bool:
    try:
        with safe_open(path, framework="pt"):  # checks that the header and the sizes it gives fit the file
            return True
    except SafetensorError:
        return False


class HubModelMixin:
    """For `PreTrainedModel`s: `save_pretrained` also writes the remote-code bundle, `auto_map`, the processor and a
    model card; `push_to_hub` uploads all of it in one commit (`mamba_multimodal.sharing.push_folder`).
    `from_pretrained` names a truncated weights file."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        with weights_named_on_error(pretrained_model_name_or_path, kwargs.get("subfolder", "")):
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory, *args, processor=None, push_to_hub: bool = False, **kwargs):
        """transformers' `save_pretrained`, then (with the package installed) the bundle, `auto_map` in config.json,
        the processor and a `README.md` model card when the folder has none.

        Args:
            processor: the processor to save beside the model; default: the family's processor rebuilt from the config
                (the image or feature processor; VLM-Mamba's only when the config fits the bundled tokenizer).
            push_to_hub: then upload the folder (`repo_id`, `private`, `revision`, `commit_message`, `token`,
                `create_pr` as in transformers).
        """
        if _sharing is None:
            if processor is not None:
                processor.save_pretrained(save_directory)
            return super().save_pretrained(save_directory, *args, push_to_hub=push_to_hub, **kwargs)
        push_options = _split_push_options(save_directory, kwargs) if push_to_hub else None
        result = super().save_pretrained(save_directory, *args, **kwargs)
        # transformers writes only on the main process and, with torch.distributed initialised, only on rank 0.
        if self.should_save_on_this_rank(kwargs.get("is_main_process", True)):
            _sharing.complete_folder(self, save_directory, processor=processor)
            if push_options is not None:
                _sharing.push_folder(save_directory, push_options.pop("repo_id"), **push_options)
        return result

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        processor=None,
    ):
        """Saves into a temporary folder (weights, bundle, processor, model card) and uploads it in one commit.

        Returns:
            huggingface_hub's `CommitInfo`.
        """
        push = dict(commit_message=commit_message, commit_description=commit_description, private=private,
                    token=token, revision=revision, create_pr=create_pr)  # fmt: skip
        if _sharing is None:
            return super().push_to_hub(repo_id, max_shard_size=max_shard_size, tags=tags, **push)
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size, processor=processor)
            if tags:
                _sharing.add_card_tags(folder, tags)
            return _sharing.push_folder(folder, repo_id, **push)


class HubProcessorMixin:
    """For processors (image, feature, multimodal): `save_pretrained` also writes the remote-code bundle and the
    `auto_map` that `Auto*.from_pretrained(..., trust_remote_code=True)` follows. Each processor class sets
    `family_name`, the registry family whose bundle holds its code."""

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        if _sharing is None:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        push_options = _split_push_options(save_directory, kwargs) if push_to_hub else None
        result = super().save_pretrained(save_directory, **kwargs)
        _sharing.complete_processor_folder(self, save_directory)
        if push_options is not None:
            _sharing.push_folder(save_directory, push_options.pop("repo_id"), **push_options)
        return result


__all__ = ["HubModelMixin", "HubProcessorMixin", "register_sharing", "weights_named_on_error"]
