"""MMSA sentiment metrics on hand-worked cases: every expected value below is derived in the comments."""

import math

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from mamba_multimodal.training.metrics import sentiment_compute_metrics, sentiment_metrics
from mamba_multimodal.training.metrics.sentiment import _sims_bins

MOSEI_KEYS = ["Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr"]
SIMS_KEYS = ["Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"]
CLASSIFICATION_KEYS = ["Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Acc_3", "F1_score_3"]

# MOSEI regression case. Per sample: np.round(clip3) pred / truth, then >= 0 and > 0 pred / truth.
#   0:  0.5 ->  0 /  1.0 ->  1     T T / T T
#   1:  1.5 ->  2 /  2.0 ->  2     T T / T T
#   2:  2.5 ->  2 /  3.0 ->  3     T T / T T      (round half to even: 2.5 -> 2)
#   3: -2.5 -> -2 / -2.0 -> -2     F F / F F      (-2.5 -> -2)
#   4:  0.2 ->  0 /  0.0 ->  0     T T / - -      truth 0: in Has0, not in Non0
#   5: -0.4 -> -0 /  0.0 ->  0     F T / - -      truth 0: Has0 counts it non-negative
#   6:  2.6 ->  3 /  2.0 ->  2     T T / T T
#   7:  0.0 ->  0 / -1.2 -> -1     T F / F F      prediction 0: non-negative in Has0, not positive in Non0
#   8: -0.3 -> -0 /  0.8 ->  1     F T / F T
MOSEI_PREDICTIONS = [0.5, 1.5, 2.5, -2.5, 0.2, -0.4, 2.6, 0.0, -0.3]
MOSEI_LABELS = [1.0, 2.0, 3.0, -2.0, 0.0, 0.0, 2.0, -1.2, 0.8]
MOSEI_EXPECTED = {
    # >= 0 differs at 5, 7, 8.
    "Has0_acc_2": 6 / 9,
    # class T: truth {0,1,2,4,5,6,8}, pred {0,1,2,4,6,7}: P 5/6, R 5/7, F1 10/13;
    # class F: truth {3,7}, pred {3,5,8}: P 1/3, R 1/2, F1 2/5.  Weighted by support 7 and 2.
    "Has0_F1_score": (7 * 10 / 13 + 2 * 2 / 5) / 9,
    # Non0 keeps 0, 1, 2, 3, 6, 7, 8; > 0 differs at 8 only.
    "Non0_acc_2": 6 / 7,
    # class T: truth {0,1,2,6,8}, pred {0,1,2,6}: F1 8/9; class F: truth {3,7}, pred {3,7,8}: F1 4/5.
    "Non0_F1_score": (5 * 8 / 9 + 2 * 4 / 5) / 7,
    # clip to [-2, 2] first: 2 (0.5->0 vs 1), 7 (0 vs -1), 8 (-0 vs 1) differ; 2.5 -> 2 == clip(3) -> 2, 2.6 -> 2 == 2.
    "Mult_acc_5": 6 / 9,
    # 0 (0 vs 1), 2 (2 vs 3), 6 (3 vs 2), 7, 8 differ.
    "Mult_acc_7": 4 / 9,
    # |errors| 0.5 0.5 0.5 0.5 0.2 0.4 0.6 1.2 1.1 sum to 5.5.
    "MAE": 5.5 / 9,
}


def test_mosei_regression_on_a_hand_worked_case():
    metrics = sentiment_metrics(MOSEI_PREDICTIONS, MOSEI_LABELS, dataset="mosei")
    assert list(metrics) == MOSEI_KEYS
    for key, value in MOSEI_EXPECTED.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    assert metrics["Corr"] == pytest.approx(np.corrcoef(MOSEI_PREDICTIONS, MOSEI_LABELS)[0, 1])
    assert all(type(value) is float for value in metrics.values())


def test_mosi_uses_the_mosei_definitions():
    assert sentiment_metrics(MOSEI_PREDICTIONS, MOSEI_LABELS, "MOSI") == sentiment_metrics(
        MOSEI_PREDICTIONS, MOSEI_LABELS, "mosei"
    )


def test_corr_and_mae_by_hand():
    # deviations from the means (2, 2): (-1, 0, 1) and (-1, 1, 0): r = 1 / sqrt(2 * 2) = 0.5; |errors| 0, 1, 1.
    metrics = sentiment_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert metrics["Corr"] == pytest.approx(0.5) and metrics["MAE"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("prediction", "label", "same_class"),
    [(0.5, 0.0, True), (0.5, 1.0, False), (1.5, 2.0, True), (2.5, 2.0, True), (2.5, 3.0, False), (-2.5, -2.0, True),
     (-0.5, 0.0, True), (3.49, 3.0, True), (-7.0, -3.0, True)],
)  # fmt: skip
def test_acc7_rounds_half_to_even_like_np_round(prediction, label, same_class):
    metrics = sentiment_metrics([prediction], [label])
    assert metrics["Mult_acc_7"] == float(same_class)


def test_mae_and_corr_use_unclipped_values_for_mosei():
    metrics = sentiment_metrics([5.0, -1.0], [3.0, -1.0])  # clip to 3 would give MAE 0
    assert metrics["MAE"] == pytest.approx(1.0) and metrics["Mult_acc_7"] == 1.0


def test_non0_is_nan_when_every_label_is_zero():
    metrics = sentiment_metrics([0.3, -0.2], [0.0, 0.0])
    assert math.isnan(metrics["Non0_acc_2"]) and math.isnan(metrics["Non0_F1_score"])
    assert metrics["Has0_acc_2"] == 0.5


# SIMS regression case, after clipping to [-1, 1]:
#   pred  -1.5 -> -1.0  -0.5   0.0   0.05   0.3   0.9
#   truth       -0.8    -0.2   0.2   0.0    0.4   1.0
#   2-bin pred   0       0     0     1      1     1      (0 is negative: bin [-1, 0])
#   2-bin truth  0       0     1     0      1     1      -> 4/6
#   3-bin pred   0       0     1     1      2     2
#   3-bin truth  0       0     2     1      2     2      -> 5/6
#   5-bin pred   0       1     2     2      3     4
#   5-bin truth  0       1     3     2      3     4      -> 5/6
SIMS_PREDICTIONS = [-1.5, -0.5, 0.0, 0.05, 0.3, 0.9]
SIMS_LABELS = [-0.8, -0.2, 0.2, 0.0, 0.4, 1.0]


@pytest.mark.parametrize("dataset", ["sims", "simsv2"])
def test_sims_regression_on_a_hand_worked_case(dataset):
    metrics = sentiment_metrics(SIMS_PREDICTIONS, SIMS_LABELS, dataset=dataset)
    assert list(metrics) == SIMS_KEYS
    assert metrics["Mult_acc_2"] == pytest.approx(4 / 6)
    assert metrics["Mult_acc_3"] == pytest.approx(5 / 6)
    assert metrics["Mult_acc_5"] == pytest.approx(5 / 6)
    # class 0: truth {0,1,3}, pred {0,1,2}: F1 2/3; class 1: truth {2,4,5}, pred {3,4,5}: F1 2/3.
    assert metrics["F1_score"] == pytest.approx(2 / 3)
    # on the clipped prediction -1.0: |errors| 0.2 0.3 0.2 0.05 0.1 0.1 (unclipped -1.5 would add 0.5).
    assert metrics["MAE"] == pytest.approx(0.95 / 6)


def test_sims_corr_uses_clipped_values():
    # clipped prediction (-1, 0, 0.5), mean -1/6: deviations (-5/6, 1/6, 4/6); truth deviations (-1, 0, 1).
    # covariance sum 9/6, squared sums 42/36 and 2: r = 1.5 / sqrt(7/3).
    metrics = sentiment_metrics([-3.0, 0.0, 0.5], [-1.0, 0.0, 1.0], dataset="sims")
    assert metrics["Corr"] == pytest.approx(1.5 / math.sqrt(7 / 3))


@pytest.mark.parametrize(
    ("value", "bins"),  # (2-class, 3-class, 5-class): bins are (lo, hi], the first one closed at -1
    [(-1.0, (0, 0, 0)), (-0.7, (0, 0, 0)), (-0.69, (0, 0, 1)), (-0.1, (0, 0, 1)), (-0.09, (0, 1, 2)),
     (0.0, (0, 1, 2)), (0.01, (1, 1, 2)), (0.1, (1, 1, 2)), (0.11, (1, 2, 3)), (0.7, (1, 2, 3)), (0.71, (1, 2, 4)),
     (1.0, (1, 2, 4))],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sims_bin_edges_belong_to_the_lower_bin_in_the_inputs_precision(value, bins, dtype):
    values = np.array([value], dtype=dtype)
    assert tuple(int(_sims_bins(values, k)[0]) for k in (2, 3, 5)) == bins


# Classification case: labels 0 negative, 1 neutral, 2 positive.
#   logits       argmax3  argmax(neg, pos)  label  Has0 truth (label 2)
#   [2, 0, 1]    0        0                 0      0
#   [0, 3, 1]    1        1                 0      0
#   [0, 2, 1]    1        1                 1      0
#   [1, 2, 0]    1        0                 1      0
#   [0, 1, 2]    2        1                 2      1
#   [1, 2, 1]    1        0 (tie -> neg)    2      1
CLASSIFICATION_LOGITS = [[2, 0, 1], [0, 3, 1], [0, 2, 1], [1, 2, 0], [0, 1, 2], [1, 2, 1]]
CLASSIFICATION_LABELS = [0, 0, 1, 1, 2, 2]


def test_classification_on_a_hand_worked_case():
    metrics = sentiment_metrics(CLASSIFICATION_LOGITS, CLASSIFICATION_LABELS, dataset="mosei", mode="classification")
    assert list(metrics) == CLASSIFICATION_KEYS
    assert metrics["Acc_3"] == pytest.approx(4 / 6)  # wrong at 1 and 5
    assert metrics["F1_score_3"] == pytest.approx(2 / 3)  # each class: P, R = (1, 1/2) or (1/2, 1): F1 2/3
    assert metrics["Has0_acc_2"] == pytest.approx(3 / 6)  # right at 0, 3, 4
    # class 0: truth {0,1,2,3}, pred {0,3,5}: F1 4/7; class 1: truth {4,5}, pred {1,2,4}: F1 2/5.
    assert metrics["Has0_F1_score"] == pytest.approx((4 * 4 / 7 + 2 * 2 / 5) / 6)
    # Non0 keeps 0, 1, 4, 5 with truth 0, 0, 1, 1 and predictions 0, 1, 1, 0 (MMSA's {0, 2} truth gives 1/4).
    assert metrics["Non0_acc_2"] == pytest.approx(0.5)
    assert metrics["Non0_F1_score"] == pytest.approx(0.5)


def test_classification_non0_counts_correct_positives_unlike_mmsa():
    logits, labels = [[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]], [0, 2]
    metrics = sentiment_metrics(logits, labels, mode="classification")
    assert metrics["Non0_acc_2"] == 1.0 and metrics["Non0_F1_score"] == 1.0  # MMSA: 0.5 (positive never correct)


def test_inputs_may_be_tensors_lists_or_column_vectors():
    as_lists = sentiment_metrics(MOSEI_PREDICTIONS, MOSEI_LABELS)
    as_tensors = sentiment_metrics(torch.tensor(MOSEI_PREDICTIONS).view(-1, 1), torch.tensor(MOSEI_LABELS))
    as_arrays = sentiment_metrics(np.array(MOSEI_PREDICTIONS)[:, None], np.array(MOSEI_LABELS)[:, None])
    assert as_tensors == pytest.approx(as_lists) and as_arrays == as_lists
    logits = torch.tensor(CLASSIFICATION_LOGITS, dtype=torch.bfloat16)
    expected = sentiment_metrics(CLASSIFICATION_LOGITS, CLASSIFICATION_LABELS, mode="classification")
    assert sentiment_metrics(logits, torch.tensor(CLASSIFICATION_LABELS), mode="classification") == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [0.1, 0.2], "labels": [0.1]}, "predictions has 2 samples but labels has 1"),
        ({"predictions": [], "labels": []}, "predictions is empty"),
        ({"predictions": [0.1, float("nan")], "labels": [0.1, 0.2]}, r"predictions contains NaN \(first at index \[1"),
        ({"predictions": [0.1], "labels": [float("nan")]}, "labels contains NaN"),
        ({"predictions": [0.1], "labels": [0.1], "dataset": "iemocap"}, "dataset must be one of mosi, mosei, sims"),
        ({"predictions": [0.1], "labels": [0.1], "mode": "ranking"}, "mode must be one of regression, classification"),
        ({"predictions": [[0.1, 0.2]], "labels": [0.1]}, r"predictions must have shape \(N,\) or \(N, 1\)"),
        ({"predictions": [[1, 2, 3]], "labels": [3], "mode": "classification"}, "labels must be 0 .* got 3"),
        ({"predictions": [[1, 2]], "labels": [1], "mode": "classification"}, r"predictions must be \(N, 3\) logits"),
        ({"predictions": ["a"], "labels": [0.1]}, "predictions must hold real numbers"),
    ],
)  # fmt: skip
def test_bad_input_raises_value_error_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sentiment_metrics(**kwargs)


def test_compute_metrics_for_trainer_takes_eval_prediction_with_tuple_outputs():
    compute_metrics = sentiment_compute_metrics(dataset="mosei")
    predictions = np.array(MOSEI_PREDICTIONS, dtype=np.float32)[:, None]
    hidden = np.zeros((len(MOSEI_PREDICTIONS), 4), dtype=np.float32)
    labels = np.array(MOSEI_LABELS, dtype=np.float32)
    from_tuple = compute_metrics(EvalPrediction(predictions=(predictions, hidden), label_ids=labels))
    assert from_tuple == compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
    assert from_tuple == pytest.approx(sentiment_metrics(MOSEI_PREDICTIONS, MOSEI_LABELS))
    classify = sentiment_compute_metrics(dataset="sims", mode="classification")
    logits = np.array(CLASSIFICATION_LOGITS, dtype=np.float32)
    assert list(classify(EvalPrediction(logits, np.array(CLASSIFICATION_LABELS)))) == CLASSIFICATION_KEYS


def test_compute_metrics_checks_its_choices_at_once():
    with pytest.raises(ValueError, match="dataset must be one of"):
        sentiment_compute_metrics(dataset="mosei2")
