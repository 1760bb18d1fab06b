"""Sharing on the Hub: every folder this package saves loads anywhere, with or without the package.

    model.save_pretrained("out")   # weights, config.json with auto_map, the family's .py files, processor, model card
    AutoModelForImageTextToText.from_pretrained("out", trust_remote_code=True)    # where mamba_multimodal is absent
    mamba_multimodal.sharing.push_folder("out", "me/vlm-mamba-easy-vqa", private=True)  # one commit

`bundle` writes the remote-code bundle and `auto_map`, `card` the model card, `push` uploads through
`huggingface_hub.HfApi`, `hub_id` says whether an argument is a Hub id. Importing this package registers it as the
sharing hook that the models' and processors' `save_pretrained` call (`hub_mixin.register_sharing`).
"""

import sys

from .. import hub_mixin
from .bundle import (
    PROCESSOR_FILES,
    bundle_sources,
    complete_folder,
    complete_processor_folder,
    default_processor,
    model_auto_map,
    write_bundle,
)
from .card import add_card_tags, model_card, write_model_card
from .hub_id import as_hub_id, is_hub_id
from .push import HubError, check_can_push, check_folder, push_folder

hub_mixin.register_sharing(sys.modules[__name__])

__all__ = [
    "PROCESSOR_FILES",
    "HubError",
    "add_card_tags",
    "as_hub_id",
    "bundle_sources",
    "check_can_push",
    "check_folder",
    "complete_folder",
    "complete_processor_folder",
    "default_processor",
    "is_hub_id",
    "model_auto_map",
    "model_card",
    "push_folder",
    "write_bundle",
    "write_model_card",
]
