"""COCO caption metrics (BLEU-4, ROUGE-L, CIDEr-D) through pycocoevalcap's own scorers, without Java.

pycocoevalcap's `COCOEvalCap` always tokenises with the Stanford PTBTokenizer (a Java jar), then scores with
`Bleu(4)`, `Rouge()` and `Cider()`, which are pure Python. Here the same three scorers receive captions tokenised by
`tokenize_caption`, a Python stand-in for `java edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase`
followed by pycocoevalcap's removal of punctuation tokens:
    - lowercase; clitics split off as PTB does ("man's" -> "man 's", "don't" -> "do n't");
    - words keep inner hyphens, apostrophes and periods ("t-shirt", "o'clock", "u.s"), numbers their "," and "."
      ("1,000", "2.5");
    - every other punctuation mark is its own token, and the tokens pycocoevalcap drops are dropped:
      '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; (brackets and double quotes are what PTB turns into
      -LRB- ... and `` '', so they go too).
Scores can differ slightly from the Java pipeline on unusual punctuation; on ordinary captions the tokens agree.

CIDEr-D takes its IDF from the references of the evaluated set: score a whole split, never a handful of images (on a
single image every n-gram has IDF 0 and CIDEr is 0).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# pycocoevalcap/tokenizer/ptbtokenizer.py `PUNCTUATIONS`, plus the raw characters PTB rewrites into some of them.
PTB_PUNCTUATION = frozenset(
    {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"}
    | {"(", ")", "[", "]", "{", "}", '"', "-lrb-", "-rrb-", "-lcb-", "-rcb-"}
)
_CLITIC = re.compile(r"(?<=\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\d+(?:[.,]\d+)+|\w+(?:[-'.]\w+)*|\.\.\.|--|\S")
_INSTALL_HINT = (
    "caption metrics need pycocoevalcap: pip install 'mamba-multimodal[captions]' (or: pip install pycocoevalcap)"
)


def tokenize_caption(caption: str) -> str:
    """One caption as pycocoevalcap scores it: PTB-style tokens, lowercased, punctuation tokens dropped, joined by " ".

    "A man's T-shirt, (red)." -> "a man 's t-shirt red"
    """
    text = _CLITIC.sub(r" \1", caption.replace("\n", " ").lower())
    return " ".join(token for token in _TOKEN.findall(text) if token not in PTB_PUNCTUATION)


def _scorers():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return {"BLEU-4": Bleu(4), "ROUGE-L": Rouge(), "CIDEr": Cider()}


def _check_inputs(predictions: Mapping, references: Mapping) -> None:
    if not predictions:
        raise ValueError("predictions is empty: caption metrics need at least one image")
    missing, extra = set(predictions) - set(references), set(references) - set(predictions)
    if missing or extra:
        raise ValueError(
            f"predictions and references must have the same ids: {len(missing)} predicted ids have no references "
            f"(first: {sorted(missing, key=str)[:5]}), {len(extra)} referenced ids have no prediction "
            f"(first: {sorted(extra, key=str)[:5]})"
        )
    for key, prediction in predictions.items():
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{key!r}] must be one caption (a string), got {type(prediction).__name__}")
        captions = references[key]
        if isinstance(captions, str) or not captions or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"references[{key!r}] must be a non-empty list of strings, got {captions!r}")


def caption_metrics(predictions: Mapping[object, str], references: Mapping[object, list[str]]) -> dict[str, float]:
    """BLEU-4, ROUGE-L and CIDEr(-D) of one generated caption per image, as pycocoevalcap computes them.

    Args:
        predictions: {image id: generated caption}.
        references: {image id: [reference captions]} with the same ids (COCO: ~5 per image).
    Returns:
        {"BLEU-4": float, "ROUGE-L": float, "CIDEr": float}; BLEU and ROUGE-L in [0, 1], CIDEr-D in [0, 10]
        (pycocoevalcap's scale, ×10), all corpus-level over the given images.
    Raises:
        ValueError: empty input, different id sets, a prediction that is not a string, an image without references.
        ImportError: pycocoevalcap is not installed (the `captions` extra).
    """
    _check_inputs(predictions, references)
    scorers = _scorers()
    res = {key: [tokenize_caption(caption)] for key, caption in predictions.items()}
    gts = {key: [tokenize_caption(caption) for caption in references[key]] for key in predictions}
    bleu, _ = scorers["BLEU-4"].compute_score(gts, res, verbose=0)  # [BLEU-1, ..., BLEU-4], "closest" ref length
    rouge, _ = scorers["ROUGE-L"].compute_score(gts, res)
    cider, _ = scorers["CIDEr"].compute_score(gts, res)
    return {"BLEU-4": float(bleu[3]), "ROUGE-L": float(rouge), "CIDEr": float(cider)}


__all__ = ["PTB_PUNCTUATION", "caption_metrics", "tokenize_caption"]
