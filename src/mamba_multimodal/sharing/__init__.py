"""Sharing on the Hub: every folder this package saves loads anywhere, with or without the package.

    model.save_pretrained("out")   # weights, config.json with auto_map, the family's .py files, processor, model card
    AutoModelForImageTextToText.from_pretrained("out", trust_remote_code=True)    # where mamba_multimodal is absent
    mamba_multimodal.sharing.push_folder("out", "me/vlm-mamba-easy-vqa", private=True)  # one commit

`bundle`: the remote-code bundle and `auto_map`; `card`: the model card; `push`: the upload; `hub_id`: is this a Hub
id. Importing the package registers it as the hook the models' and processors' `save_pretrained` call.
"""

import sys

from .. import hub_mixin
from . import bundle, card, hub_id, push
from .bundle import *  # noqa: F403
from .card import *  # noqa: F403
from .hub_id import *  # noqa: F403
from .push import *  # noqa: F403

__all__ = [*bundle.__all__, *card.__all__, *hub_id.__all__, *push.__all__]

hub_mixin.register_sharing(sys.modules[__name__])
