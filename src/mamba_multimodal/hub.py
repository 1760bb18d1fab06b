"""The sharing layer's public names under their first home (`mamba_multimodal.hub.push_folder`, `HubError`, ...):
the code lives in `mamba_multimodal.sharing`. Folders saved by 0.1.0 carry a `hub_mixin.py` that calls this module's
`complete_folder`, `complete_processor_folder`, `push_folder` and `add_card_tags` when the package is installed."""

from .sharing import *  # noqa: F403
from .sharing import __all__  # noqa: F401
