"""GQA accuracy, POPE's metrics and the TextVQA accuracy: each rule of the reference scripts on a hand-worked case
(LLaVA's convert_gqa_for_eval.py + GQA eval.py, eval_pope.py, m4c_evaluator.py), and TextVQA against a line-by-line
restatement of m4c_evaluator.py's TextVQAAccuracyEvaluator on random answers."""

import random
import re

import pytest

from mamba_multimodal.training.metrics import (
    gqa_accuracy,
    normalize_textvqa_answer,
    pope_answer,
    pope_metrics,
    vqa_accuracy,
)
from mamba_multimodal.training.metrics.benchmarks import gqa_normalize
from mamba_multimodal.training.metrics.vqa import ARTICLES, CONTRACTIONS, NUMBER_WORDS, PUNCTUATION


# ------------------------------------------------------------------------------------------------------- GQA
@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Yes.", "yes"),  # trailing period dropped, lowercased
        ("yes...", "yes"),  # every trailing period
        ("t-shirt", "t-shirt"),  # nothing else is touched: no punctuation removal
        ("on the left", "on the left"),  # no article removal
        ("Mr. Smith", "mr. smith"),  # inner periods stay
        (" yes", " yes"),  # nor is the text stripped (LLaVA strips the generated text before)
    ],
)
def test_gqa_normalize_is_llavas_rstrip_period_lower(prediction, expected):
    assert gqa_normalize(prediction) == expected


def test_gqa_accuracy_is_exact_match_after_normalisation():
    predictions = ["Yes.", "white", "Outdoors", "no.", "a truck", "Two"]
    answers = ["yes", "white", "outdoors", "yes", "truck", "2"]
    accuracy, per_question = gqa_accuracy(predictions, answers, return_per_question=True)
    assert per_question == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # no article or number-word mapping, unlike VQA
    assert accuracy == pytest.approx(0.5)


@pytest.mark.parametrize(("predictions", "answers"), [([], []), (["a"], ["a", "b"]), ("yes", "yes"), ([1], ["1"])])
def test_gqa_accuracy_refuses_mismatched_input(predictions, answers):
    with pytest.raises(ValueError, match="predictions"):
        gqa_accuracy(predictions, answers)


# ------------------------------------------------------------------------------------------------------ POPE
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", "yes"),
        ("No", "no"),
        ("no", "no"),
        ("NO", "yes"),  # the three words are matched as written
        ("No.", "no"),
        ("Yes. There is no dog.", "yes"),  # only the text before the first "." counts
        ("There is no dog. Yes.", "no"),
        ("No, there is none", "no"),  # "," is deleted before the split
        ("There is not a cat", "no"),  # "not" reads as no
        ("nothing", "yes"),  # whole words only
        ("cannot", "yes"),
        ("no\ncat", "yes"),  # the split is on single spaces: "no\ncat" is one word
        ("", "yes"),  # anything without a no-word is yes
        ("maybe", "yes"),
    ],
)
def test_pope_answer_follows_eval_pope(text, expected):
    assert pope_answer(text) == expected


def test_pope_metrics_hand_worked():
    labels = ["yes", "yes", "no", "no", "yes"]
    predictions = ["Yes", "No, it is not.", "Yes.", "no", "There is a dog."]  # read: yes, no, yes, no, yes
    # TP 2 (0, 4), FN 1 (1), FP 1 (2), TN 1 (3)
    metrics = pope_metrics(predictions, labels)
    assert metrics == pytest.approx(
        {"accuracy": 3 / 5, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "yes_ratio": 3 / 5}
    )


def test_pope_metrics_uneven_case_and_labels_other_than_no_count_as_yes():
    labels = ["yes", "no", "no", "no", "Yes"]  # "Yes" is not "no": positive, as eval_pope.py maps it
    predictions = ["yes", "yes", "yes", "no", "yes"]
    # TP 2, FP 2, TN 1, FN 0: P = 1/2, R = 1, F1 = 2/3
    assert pope_metrics(predictions, labels) == pytest.approx(
        {"accuracy": 3 / 5, "precision": 1 / 2, "recall": 1.0, "f1": 2 / 3, "yes_ratio": 4 / 5}
    )


def test_pope_metrics_zero_denominators_are_zero_where_the_script_divides_by_zero():
    metrics = pope_metrics(["no", "no"], ["yes", "no"])  # no yes predicted: precision 0/0
    assert metrics == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0}


# --------------------------------------------------------------------------------------------------- TextVQA
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOKIA", "nokia"),  # lowercased first
        ("1,000", "1000"),  # "," deleted
        ("red,white", "redwhite"),  # deleted, where vqaEval's punctuation step makes it a space
        ("what?", "what"),  # "?" deleted
        ("McDonald's", "mcdonald 's"),  # "'s" split off
        ("Coca-Cola", "coca cola"),  # then the VQA steps: "-" becomes a space
        ("The Two Dogs.", "2 dogs"),  # articles, number words, periods
        ("  stop\tsign \n", "stop sign"),
    ],
)
def test_textvqa_normalisation_rules(text, expected):
    assert normalize_textvqa_answer(text) == expected


def test_textvqa_normalises_the_raw_ground_truth_too():
    # TextVQA's answers are raw: "Nokia" only matches "nokia" once the ground truth is lowercased as well
    answers = [["Nokia"] * 4 + ["nokia phone"] * 6]
    assert vqa_accuracy(["nokia"], answers, normalization="textvqa") == 1.0  # 4 humans: 3 left in every subset
    assert vqa_accuracy(["nokia"], answers) == 0.0  # VQA v2's rules leave the answers' case alone


def test_textvqa_accuracy_hand_worked():
    answers = [["McDonald's"] * 3 + ["mcdonalds"] * 7, ["twelve"] * 2 + ["12"] * 8, ["stop"] * 10]
    predictions = ["mcdonald's", "12", "Stop?"]
    # q1: 3 matches: 3 subsets keep 2 (2/3), 7 keep 3 (1) -> 0.9; q2: "twelve" -> "12": 10 matches -> 1; q3: 1
    accuracy, per_question = vqa_accuracy(predictions, answers, return_per_question=True, normalization="textvqa")
    assert per_question == pytest.approx([0.9, 1.0, 1.0]) and accuracy == pytest.approx(2.9 / 3)
    with pytest.raises(ValueError, match="normalization"):
        vqa_accuracy(predictions, answers, normalization="gqa")


# m4c_evaluator.py (EvalAIAnswerProcessor + TextVQAAccuracyEvaluator), restated line by line from its source
def m4c_process(item: str) -> str:
    item = item.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    item = item.replace("\n", " ").replace("\t", " ").strip()
    out = item
    for mark in PUNCTUATION:
        if (mark + " " in item or " " + mark in item) or re.search(r"(?<=\d)(\,)+(?=\d)", item) is not None:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    out = re.compile(r"(?!<=\d)(\.)(?!\d)").sub("", out, re.UNICODE)
    number_map = dict(NUMBER_WORDS)  # the original's setdefault adds every word to its map: a copy keeps ours intact
    words = [number_map.setdefault(word, word) for word in out.lower().split()]
    words = [word for word in words if word not in ARTICLES]
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def m4c_score(prediction: str, raw_answers: list[str]) -> float:
    answers = [m4c_process(answer) for answer in raw_answers]
    gt_answers = list(enumerate(answers))
    scores = {}
    for unique in set(answers):
        accs = []
        for gt_answer in gt_answers:
            others = [item for item in gt_answers if item != gt_answer]
            accs.append(min(1, len([item for item in others if item[1] == unique]) / 3))
        scores[unique] = sum(accs) / len(accs)
    return scores.get(m4c_process(prediction), 0.0)


def test_textvqa_accuracy_equals_m4c_evaluator_on_random_answers():
    pieces = ["Nokia", "nokia", "the", "Two", "2", "1,000", "it's", "don't", "dont", "t-shirt", "a.b", "STOP", "?",
              "x.5", "(sign)", "red, white", "McDonald's", "none", "\t", "yes."]  # fmt: skip
    generator = random.Random(0)
    text = lambda: " ".join(generator.choice(pieces) for _ in range(generator.randint(1, 3)))  # noqa: E731
    answers = []
    for _ in range(300):
        common = [text() for _ in range(3)]
        answers.append([generator.choice(common) for _ in range(10)])
    predictions = [generator.choice(row) if generator.random() < 0.6 else text() for row in answers]
    _, per_question = vqa_accuracy(predictions, answers, return_per_question=True, normalization="textvqa")
    expected = [m4c_score(prediction, row) for prediction, row in zip(predictions, answers, strict=True)]
    assert per_question == pytest.approx(expected)
    assert sum(score > 0 for score in expected) > 100  # the draw scores many questions above 0
