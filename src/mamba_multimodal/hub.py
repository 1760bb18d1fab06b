"""`mamba_multimodal.sharing`'s names under their first home (`hub.push_folder`, `hub.HubError`, ...), which the
`hub_mixin.py` of folders saved by 0.1.0 also calls (`complete_folder`, `push_folder`, ...)."""

from .sharing import *  # noqa: F403
from .sharing import __all__  # noqa: F401
