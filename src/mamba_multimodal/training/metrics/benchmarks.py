"""GQA and POPE scores as the reference scripts LLaVA-1.5 reports them with (TextVQA: `vqa.vqa_accuracy` with
normalization="textvqa").

GQA (LLaVA `scripts/convert_gqa_for_eval.py`, then GQA's official `eval.py --tier testdev_balanced`):
    prediction -> prediction.rstrip(".").lower(); correct = (prediction == answer), the answer as released (GQA's
    answers are lowercase words); accuracy = mean over the balanced questions. eval.py also reports it per
    structural type (query, verify, logic, choose, compare), per semantic type (rel, attr, obj, cat, global), and
    "binary" (every structural type but query) / "open" (query). Cobra's evaluation (prismatic vlm-evaluation,
    `harnesses/gqa.py`) deletes every punctuation mark before lowercasing instead: "t-shirt" differs, "yes." does not.
POPE (LLaVA `llava/eval/eval_pope.py`):
    answer: keep the text before the first "." (when there is one), delete ",", split on " " (single spaces);
        "no" when a word is exactly "No", "not" or "no" (case as written: "NO" reads as yes), else "yes".
    label: "no" -> negative, anything else -> positive; "yes" is the positive class.
    accuracy = (TP + TN) / N, precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R),
    yes_ratio = #predicted yes / N, per category file (adversarial, popular, random). LLaVA-1.5 and Cobra quote F1
    (LLaVA-1.5: averaged over the three categories).
    Departure: where a denominator is 0 the script divides by zero; here that value is 0.0 (as lmms-eval's pope).
"""

from __future__ import annotations

from collections.abc import Sequence

# eval.py: "open" questions are the structural type "query", every other type is "binary".
GQA_OPEN_TYPE = "query"
_POPE_NO_WORDS = ("No", "not", "no")  # eval_pope.py, case-sensitive


def _check_lengths(predictions: Sequence, references: Sequence, name: str) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise ValueError(f"predictions and {name} must be sequences with one entry per question, not a single string")
    if len(predictions) == 0:
        raise ValueError("predictions is empty: the score needs at least one question")
    if len(predictions) != len(references):
        raise ValueError(f"predictions has {len(predictions)} questions but {name} has {len(references)}")
    for index, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{index}] must be a string, got {type(prediction).__name__}")


# ------------------------------------------------------------------------------------------------------- GQA
def gqa_normalize(prediction: str) -> str:
    """LLaVA's conversion before GQA's eval.py: trailing periods dropped, lowercased ("Yes." -> "yes")."""
    return prediction.rstrip(".").lower()


def gqa_accuracy(predictions: Sequence[str], answers: Sequence[str], return_per_question: bool = False):
    """GQA accuracy as LLaVA-1.5 computes it: exact match of `gqa_normalize(prediction)` with the answer.

    Args:
        predictions: one generated answer per question.
        answers: the released answer of each question (GQA's `answer` field).
        return_per_question: also return the list of per-question scores (1.0 / 0.0).
    Returns:
        the accuracy in [0, 1] (eval.py prints 100 x this), or (accuracy, per-question scores).
    """
    _check_lengths(predictions, answers, "answers")
    scores = [
        float(gqa_normalize(prediction) == answer) for prediction, answer in zip(predictions, answers, strict=True)
    ]
    accuracy = sum(scores) / len(scores)
    return (accuracy, scores) if return_per_question else accuracy


# ------------------------------------------------------------------------------------------------------ POPE
def pope_answer(text: str) -> str:
    """eval_pope.py's reading of a generated answer: "no" or "yes".

    "No, there is none" -> "no" (the comma goes, "No" is a word); "Yes. There is no dog." -> "yes" (only the first
    sentence counts); "There is not a cat" -> "no"; "NO" -> "yes" and "nothing" -> "yes" (whole words, case as
    written); "no\\ncat" -> "yes" (the split is on single spaces only)."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if any(word in _POPE_NO_WORDS for word in words) else "yes"


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def pope_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """POPE's metrics of generated answers against the "yes"/"no" labels, as eval_pope.py computes them.

    Args:
        predictions: the generated texts (read with `pope_answer`).
        labels: "yes" / "no" per question (anything but "no" counts as yes, as in eval_pope.py).
    Returns:
        {"accuracy", "precision", "recall", "f1", "yes_ratio"}, fractions in [0, 1] (0.0 where a denominator is 0).
    """
    _check_lengths(predictions, labels, "labels")
    predicted_yes = [pope_answer(prediction) == "yes" for prediction in predictions]
    actual_yes = [label != "no" for label in labels]
    pairs = list(zip(predicted_yes, actual_yes, strict=True))
    true_pos = sum(p and a for p, a in pairs)
    false_pos = sum(p and not a for p, a in pairs)
    true_neg = sum(not p and not a for p, a in pairs)
    false_neg = sum(not p and a for p, a in pairs)
    precision, recall = _ratio(true_pos, true_pos + false_pos), _ratio(true_pos, true_pos + false_neg)
    return {
        "accuracy": (true_pos + true_neg) / len(pairs),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "yes_ratio": sum(predicted_yes) / len(pairs),
    }


__all__ = ["GQA_OPEN_TYPE", "gqa_accuracy", "gqa_normalize", "pope_answer", "pope_metrics"]
