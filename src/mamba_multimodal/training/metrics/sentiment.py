"""Multimodal sentiment metrics (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2) with MMSA's definitions and key names.

MMSA is thuiar/MMSA, `src/MMSA/utils/metricsTop.py` (`MetricsTop`: `__eval_mosei_regression`,
`__eval_sims_regression`, `__eval_mosi_classification`). Glossary: N samples; "truth" is the label, "prediction" the
model output.

Regression, MOSI / MOSEI (sentiment in [-3, 3]):
    Has0_acc_2, Has0_F1_score  negative (< 0) vs non-negative (>= 0), over all samples (weighted F1)
    Non0_acc_2, Non0_F1_score  negative (< 0) vs positive (> 0), over the samples whose truth is not 0
    Mult_acc_5, Mult_acc_7     np.round(clip(x, -2, 2)) / np.round(clip(x, -3, 3)) classes equal; np.round is
                               round-half-to-even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2
    MAE, Corr                  mean |prediction - truth| and Pearson r, on the unclipped values
Regression, SIMS / SIMSV2 (sentiment in [-1, 1]); predictions and truth are first clipped to [-1, 1]:
    Mult_acc_2  bins [-1, 0], (0, 1]             (0 counts as negative)
    Mult_acc_3  bins [-1, -0.1], (-0.1, 0.1], (0.1, 1]
    Mult_acc_5  bins [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1]
    F1_score    weighted F1 of the 2-class bins;  MAE, Corr on the clipped values
Classification, every dataset (labels Negative 0 / Neutral 1 / Positive 2, predictions (N, 3) logits):
    Acc_3, F1_score_3          argmax of the 3 logits (weighted F1)
    Has0_acc_2, Has0_F1_score  argmax over the (negative, positive) logits vs truth "positive" (label 2); neutral
                               counts with negative here, as in MMSA
    Non0_acc_2, Non0_F1_score  the same over the samples whose label is not neutral

Departures from MMSA, all deliberate:
- values are plain unrounded floats (MMSA rounds most of them to 4 decimals);
- classification Non0: MMSA compares the {0, 1} predictions with the labels kept as {0, 2}, so a positive sample is
  never counted correct; here positive labels are mapped to 1 first, which is what the metric means;
- MAE and Corr are accumulated in float64 (MMSA uses the tensors' float32); the class thresholds are compared in the
  inputs' own precision, as in MMSA (float32 for float16/bfloat16 inputs, float64 for integers);
- an empty Non0 subset gives NaN instead of an exception, and so does Corr when an input is constant.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

DATASETS = ("mosi", "mosei", "sims", "simsv2")
MODES = ("regression", "classification")
CLASS_NAMES = ("negative", "neutral", "positive")  # MMSA's classification labels 0, 1, 2

_SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}  # inner bin edges; bins are (lo, hi]


# --------------------------------------------------------------------------------------------------- inputs
def _to_numpy(name: str, values) -> np.ndarray:
    """A numeric numpy array from a numpy array, a (nested) list or a torch tensor; raises naming the argument."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype in (torch.float16, torch.bfloat16):
            values = values.float()
        values = values.numpy()
    array = np.asarray(values)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    if not any(np.issubdtype(array.dtype, kind) for kind in (np.floating, np.integer, np.bool_)):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        first = np.argwhere(np.isnan(array))[0].tolist()
        raise ValueError(f"{name} contains NaN (first at index {first})")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def _one_value_per_sample(name: str, array: np.ndarray) -> np.ndarray:
    """(N,) or (N, 1) -> (N,)."""
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        return array.reshape(-1)
    raise ValueError(f"{name} must have shape (N,) or (N, 1) in regression mode, got {array.shape}")


def _check_same_length(predictions: np.ndarray, labels: np.ndarray) -> None:
    if len(predictions) != len(labels):
        raise ValueError(f"predictions has {len(predictions)} samples but labels has {len(labels)}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (any case), got {value!r}")
    return value.lower()


# ---------------------------------------------------------------------------------------------- primitives
def _weighted_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """MMSA's `f1_score(truth, predicted, average='weighted')`; an absent class scores 0 (sklearn's default)."""
    return float(f1_score(truth, predicted, average="weighted", zero_division=0))


def _mae(predictions: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(predictions.astype(np.float64) - truth.astype(np.float64))))


def _pearson(predictions: np.ndarray, truth: np.ndarray) -> float:
    """np.corrcoef's r; NaN (without a warning) when either input is constant or N = 1."""
    if len(predictions) < 2:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(predictions.astype(np.float64), truth.astype(np.float64))[0, 1])


def _rounded_class_accuracy(predictions: np.ndarray, truth: np.ndarray, bound: float) -> float:
    """Share of samples with np.round(clip(prediction)) == np.round(clip(truth)), clip to [-bound, bound]."""
    predicted = np.round(np.clip(predictions, -bound, bound))
    expected = np.round(np.clip(truth, -bound, bound))
    return float(np.mean(predicted == expected))


def _sims_bins(values: np.ndarray, num_classes: int) -> np.ndarray:
    """Bin index of each value in [-1, 1]: bin i holds edge[i-1] < v <= edge[i] (MMSA's `> lo and <= hi`).

    The edges are cast to the values' dtype so that, as in MMSA, a float32 0.1 sits on the edge 0.1, not above it.
    """
    edges = np.asarray(_SIMS_EDGES[num_classes], dtype=values.dtype)
    return np.digitize(values, edges, right=True)


# ------------------------------------------------------------------------------------------------- metrics
def _mosei_regression_metrics(predictions: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MMSA `__eval_mosei_regression`. predictions, truth: (N,) unclipped sentiment scores."""
    nonzero = truth != 0
    if nonzero.any():
        non0_truth, non0_predicted = truth[nonzero] > 0, predictions[nonzero] > 0
        non0_acc = float(accuracy_score(non0_truth, non0_predicted))
        non0_f1 = _weighted_f1(non0_truth, non0_predicted)
    else:
        non0_acc = non0_f1 = float("nan")
    return {
        "Has0_acc_2": float(accuracy_score(truth >= 0, predictions >= 0)),
        "Has0_F1_score": _weighted_f1(truth >= 0, predictions >= 0),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": _rounded_class_accuracy(predictions, truth, 2.0),
        "Mult_acc_7": _rounded_class_accuracy(predictions, truth, 3.0),
        "MAE": _mae(predictions, truth),
        "Corr": _pearson(predictions, truth),
    }


def _sims_regression_metrics(predictions: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MMSA `__eval_sims_regression`. predictions, truth: (N,); everything is computed on values clipped to [-1, 1]."""
    predictions, truth = np.clip(predictions, -1.0, 1.0), np.clip(truth, -1.0, 1.0)
    bins = {k: (_sims_bins(predictions, k), _sims_bins(truth, k)) for k in _SIMS_EDGES}
    return {
        "Mult_acc_2": float(np.mean(bins[2][0] == bins[2][1])),
        "Mult_acc_3": float(np.mean(bins[3][0] == bins[3][1])),
        "Mult_acc_5": float(np.mean(bins[5][0] == bins[5][1])),
        "F1_score": _weighted_f1(bins[2][1], bins[2][0]),
        "MAE": _mae(predictions, truth),
        "Corr": _pearson(predictions, truth),
    }


def _class_labels(labels: np.ndarray) -> np.ndarray:
    """(N,) or (N, 1) labels in {0, 1, 2} (integers or integral floats) -> (N,) int64."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,) or (N, 1) in classification mode, got {labels.shape}")
    unknown = ~np.isin(labels, (0, 1, 2))
    if unknown.any():
        bad = labels[unknown][0]
        raise ValueError(f"labels must be 0 (negative), 1 (neutral) or 2 (positive) in classification mode, got {bad}")
    return labels.astype(np.int64)


def _classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """MMSA `__eval_mosi_classification`, Non0 fixed. logits: (N, 3); labels: (N,) in {0, 1, 2}."""
    predicted_3 = logits.argmax(axis=1)
    predicted_2 = logits[:, [0, 2]].argmax(axis=1)  # 1 = positive; a tie goes to negative, as np.argmax in MMSA
    truth_2 = (labels == 2).astype(np.int64)  # MMSA: 0 if label <= 1 else 1
    polar = labels != 1  # Non0: negative and positive samples only
    if polar.any():
        non0_acc = float(accuracy_score(truth_2[polar], predicted_2[polar]))
        non0_f1 = _weighted_f1(truth_2[polar], predicted_2[polar])
    else:
        non0_acc = non0_f1 = float("nan")
    return {
        "Has0_acc_2": float(accuracy_score(truth_2, predicted_2)),
        "Has0_F1_score": _weighted_f1(truth_2, predicted_2),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Acc_3": float(accuracy_score(labels, predicted_3)),
        "F1_score_3": _weighted_f1(labels, predicted_3),
    }


def sentiment_metrics(predictions, labels, dataset: str = "mosei", mode: str = "regression") -> dict[str, float]:
    """MMSA's sentiment metrics for one evaluation set, under MMSA's key names (see the module docstring).

    Args:
        predictions: numpy array, list or torch tensor. Regression: (N,) or (N, 1) scores. Classification: (N, 3)
            logits (or probabilities) ordered negative, neutral, positive.
        labels: (N,) or (N, 1). Regression: sentiment scores. Classification: classes 0, 1, 2.
        dataset: "mosi", "mosei", "sims" or "simsv2" (any case). Selects the regression definitions; classification
            is the same for every dataset.
        mode: "regression" or "classification".
    Returns:
        {name: float}, unrounded. Regression MOSI/MOSEI: Has0_acc_2, Has0_F1_score, Non0_acc_2, Non0_F1_score,
        Mult_acc_5, Mult_acc_7, MAE, Corr. Regression SIMS/SIMSV2: Mult_acc_2, Mult_acc_3, Mult_acc_5, F1_score,
        MAE, Corr. Classification: Has0_acc_2, Has0_F1_score, Non0_acc_2, Non0_F1_score, Acc_3, F1_score_3.
    Raises:
        ValueError naming the argument: unknown dataset or mode, empty input, NaN, wrong shape, different lengths.
    """
    dataset = _check_choice("dataset", dataset, DATASETS)
    mode = _check_choice("mode", mode, MODES)
    predictions, labels = _to_numpy("predictions", predictions), _to_numpy("labels", labels)
    if mode == "classification":
        if predictions.ndim != 2 or predictions.shape[1] != len(CLASS_NAMES):
            raise ValueError(f"predictions must be (N, 3) logits in classification mode, got shape {predictions.shape}")
        labels = _class_labels(labels)
        _check_same_length(predictions, labels)
        return _classification_metrics(predictions, labels)
    predictions = _one_value_per_sample("predictions", predictions)
    labels = _one_value_per_sample("labels", labels)
    _check_same_length(predictions, labels)
    if dataset in ("sims", "simsv2"):
        return _sims_regression_metrics(predictions, labels)
    return _mosei_regression_metrics(predictions, labels)


def sentiment_compute_metrics(dataset: str = "mosei", mode: str = "regression") -> Callable[..., dict[str, float]]:
    """A `compute_metrics` for `transformers.Trainer` that returns `sentiment_metrics` of each evaluation.

    The function takes an `EvalPrediction`; when the model returns a tuple (logits, hidden states, ...) the first
    element is the prediction, and when there are several label fields the first one is the label. Trainer logs
    the keys with its `eval_` prefix: `metric_for_best_model="MAE"` needs `greater_is_better=False`.
    """
    dataset = _check_choice("dataset", dataset, DATASETS)
    mode = _check_choice("mode", mode, MODES)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        if isinstance(labels, tuple):
            labels = labels[0]
        return sentiment_metrics(predictions, labels, dataset=dataset, mode=mode)

    return compute_metrics


__all__ = ["CLASS_NAMES", "DATASETS", "MODES", "sentiment_compute_metrics", "sentiment_metrics"]
