"""Dataset loaders: official file formats (local paths or Hub dataset ids) -> `datasets.DatasetDict`.

- `load_mmsa`: MMSA feature pickles of CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2 (`aligned_50.pkl`, ...).
- `load_mult`: MulT feature pickles (`mosei_senti_data.pkl`, ...).
- `safe_load_pickle`: the restricted unpickler they read with (numpy arrays and plain data only, nothing runs).
- `load_coco_captions`: COCO `annotations/captions_*.json` + images, or a Hub dataset with image and caption columns.
- `load_coco_karpathy`: Karpathy's `dataset_coco.json` splits (train + restval, val, test) + the COCO 2014 images.
- `load_vqa_v2`: VQA v2 questions + annotations JSON + COCO images, or a Hub dataset (lmms-lab/VQAv2 layout).
- `load_gqa`, `load_textvqa`, `load_pope`: the GQA, TextVQA and POPE benchmark files + images (or Hub copies).
- `load_easy_vqa`: easy-VQA from the installed `easy-vqa` package, in the VQA v2 schema.
- `load_llava`: LLaVA's alignment and instruction JSON (`blip_laion_cc_sbu_558k.json`, `llava_v1_5_mix665k.json`).
Images stay paths in a `datasets.Image()` column (decoded on access) and are checked at load time: see `images.py`.
"""

from .benchmarks import load_gqa, load_pope, load_textvqa
from .coco import load_coco_captions, load_coco_karpathy
from .easy_vqa import easy_vqa_answers, load_easy_vqa
from .llava import load_llava
from .mmsa import load_mmsa, load_mult
from .safe_pickle import safe_load_pickle
from .vqa import load_vqa_v2

__all__ = [
    "easy_vqa_answers",
    "load_coco_captions",
    "load_coco_karpathy",
    "load_easy_vqa",
    "load_gqa",
    "load_llava",
    "load_mmsa",
    "load_mult",
    "load_pope",
    "load_textvqa",
    "load_vqa_v2",
    "safe_load_pickle",
]
