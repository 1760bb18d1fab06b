"""Dataset loaders: official file formats (local paths or Hub dataset ids) -> `datasets.DatasetDict`.

- `load_mmsa`: MMSA feature pickles of CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2 (`aligned_50.pkl`, ...).
- `load_mult`: MulT feature pickles (`mosei_senti_data.pkl`, ...).
- `safe_load_pickle`: the restricted unpickler they read with (numpy arrays and plain data only, nothing runs).
"""

from .mmsa import load_mmsa, load_mult
from .safe_pickle import safe_load_pickle

__all__ = ["load_mmsa", "load_mult", "safe_load_pickle"]
