"""The official VQA accuracy: each normalisation rule on hand-worked cases, the leave-one-out arithmetic, and agreement
with a line-by-line restatement of the official evaluation loop (GT-Vision-Lab vqaEval.py, reference B3)."""

import random
import re

import pytest

from mamba_multimodal.training.metrics import (
    normalize_answer,
    process_digit_article,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)
from mamba_multimodal.training.metrics.vqa import ARTICLES, CONTRACTIONS, NUMBER_WORDS, PUNCTUATION


# ------------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes.", "yes"),  # a period not followed by a digit goes
        ("t-shirt", "t shirt"),  # no space next to "-", no digit,digit: the mark becomes a space
        ("t - shirt", "t  shirt"),  # next to a space: deleted (the double space is left for the split)
        ("1,000", "1000"),  # digit-comma-digit: every mark is deleted
        ("red,white", "red white"),
        ("hot-dog, 1,2", "hotdog 12"),  # digit,digit anywhere deletes "-" too
        ("x.5", "x.5"),  # a period before a digit stays
        ("2.5", "2.5"),
        ("mr. smith", "mr smith"),
        ("a.b", "ab"),
        ("don't", "don't"),  # the apostrophe is not in the list
        ("12:30", "12:30"),  # neither is ":"
        ("what?!", "what  "),  # each mark becomes a space
        ("(left)", " left "),
    ],
)
def test_process_punctuation_follows_the_official_rules(text, expected):
    assert process_punctuation(text) == expected


def test_process_punctuation_removes_at_most_32_periods_as_the_official_call_does():
    assert process_punctuation("." * 40) == "." * 8  # periodStrip.sub("", text, re.UNICODE): count = 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Two", "2"),
        ("none", "0"),
        ("zero one ten", "0 1 10"),
        ("eleven", "eleven"),  # only one to ten (and none, zero) are mapped
        ("twofold", "twofold"),  # whole words only
        ("The Dog", "dog"),
        ("a an the cat", "cat"),
        ("an apple", "apple"),
        ("dont", "don't"),
        ("Isnt it", "isn't it"),
        ("somebody'd", "somebodyd"),  # the official table's reversed entry
        ("Im", "im"),  # the capitalised keys never match after lowercasing
        ("  two   dogs  ", "2 dogs"),
    ],
)
def test_process_digit_article_maps_numbers_drops_articles_and_fixes_contractions(text, expected):
    assert process_digit_article(text) == expected


def test_the_tables_have_the_official_sizes():
    assert len(PUNCTUATION) == 21 and {"'", ":", "."}.isdisjoint(PUNCTUATION)
    assert len(CONTRACTIONS) == 120 and len(NUMBER_WORDS) == 12 and ARTICLES == ("a", "an", "the")


def test_normalize_answer_replaces_newlines_and_tabs_then_strips():
    assert normalize_answer("\tThe\nTwo Dogs. \n") == "2 dogs"


# ----------------------------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize(("matching", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_leave_one_out_accuracy_of_matching_humans(matching, expected):
    answers = ["yes"] * matching + ["no", "maybe", "blue", "red", "cat", "dog", "two", "car", "pink", "sky"][matching:]
    assert len(answers) == 10
    assert question_accuracy("yes", answers) == pytest.approx(expected)
    # the hand arithmetic: 3 matches -> 7 subsets keep 3 (1.0), 3 subsets keep 2 (2/3): (7 + 3 * 2/3) / 10 = 0.9


def test_prediction_is_normalised_but_identical_ground_truth_is_not():
    assert question_accuracy("Two", ["2"] * 10) == 1.0  # prediction: number word -> digit
    assert question_accuracy("2", ["2."] * 10) == 0.0  # all identical: "2." is not normalised
    assert question_accuracy("2", ["2."] * 9 + ["3"]) == 1.0  # not all identical: "2." -> "2"


def test_ground_truth_gets_punctuation_processing_only():
    # "the dog" keeps its article in the ground truth, so a prediction "the dog" (-> "dog") cannot match it ...
    assert question_accuracy("the dog", ["the dog"] * 9 + ["cat"]) == 0.0
    # ... while punctuation is processed: "t-shirt" -> "t shirt" on both sides.
    assert question_accuracy("T-shirt", ["t-shirt"] * 3 + ["shirt"] * 7) == pytest.approx(0.9)


def test_a_single_answer_is_normalised_exact_match():
    assert question_accuracy("Circle.", ["circle"]) == 1.0
    assert question_accuracy("circle", "the circle") == 1.0  # a bare string is a list of one, normalised too
    assert question_accuracy("square", ["circle"]) == 0.0


def test_vqa_annotation_dicts_are_accepted():
    answers = [{"answer": "yes", "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)]
    assert vqa_accuracy(["yes"], [answers]) == 1.0


def test_overall_accuracy_is_the_mean_over_questions():
    predictions = ["yes", "2", "red"]
    answers = [["yes"] * 10, ["2"] * 2 + ["3"] * 8, ["blue"] * 10]
    accuracy, per_question = vqa_accuracy(predictions, answers, return_per_question=True)
    assert per_question == pytest.approx([1.0, 0.6, 0.0])
    assert accuracy == pytest.approx(1.6 / 3)
    assert vqa_accuracy(predictions, answers) == accuracy


@pytest.mark.parametrize(
    ("predictions", "answers", "message"),
    [
        ([], [], "empty"),
        (["yes"], [["yes"], ["no"]], "1 questions but answers has 2"),
        (["yes"], [[]], r"answers\[0\] must be a non-empty list"),
        ([3], [["3"]], r"predictions\[0\] must be a string"),
        ("yes", ["yes"], "not a single string"),
    ],
)
def test_bad_input_raises_a_clear_error(predictions, answers, message):
    with pytest.raises(ValueError, match=message):
        vqa_accuracy(predictions, answers)


# --------------------------------------------------- against a restatement of the official evaluation loop
def _official_question_accuracy(res_answer: str, gt_answers: list[dict]) -> float:
    """vqaEval.py `evaluate`, restated line by line for one question (the tables are the module's)."""
    comma_strip, period_strip = re.compile(r"(\d)(\,)(\d)"), re.compile(r"(?!<=\d)(\.)(?!\d)")

    def process_punctuation_(in_text):
        out_text = in_text
        for p in PUNCTUATION:
            if (p + " " in in_text or " " + p in in_text) or (re.search(comma_strip, in_text) is not None):
                out_text = out_text.replace(p, "")
            else:
                out_text = out_text.replace(p, " ")
        return period_strip.sub("", out_text, count=re.UNICODE)

    def process_digit_article_(in_text):
        out_text = []
        for word in in_text.lower().split():
            word = NUMBER_WORDS.get(word, word)  # manualMap.setdefault(word, word) in the original
            if word not in ARTICLES:
                out_text.append(word)
        for word_id, word in enumerate(out_text):
            if word in CONTRACTIONS:
                out_text[word_id] = CONTRACTIONS[word]
        return " ".join(out_text)

    res_answer = res_answer.replace("\n", " ").replace("\t", " ").strip()
    res_answer = process_digit_article_(process_punctuation_(res_answer))
    gt_answers = [dict(answer) for answer in gt_answers]
    if len({answer["answer"] for answer in gt_answers}) > 1:
        for answer in gt_answers:
            answer["answer"] = process_punctuation_(answer["answer"])
    accuracies = []
    for gt_datum in gt_answers:
        others = [item for item in gt_answers if item != gt_datum]
        matching = [item for item in others if item["answer"] == res_answer]
        accuracies.append(min(1, float(len(matching)) / 3))
    return float(sum(accuracies)) / len(accuracies)


def test_agrees_with_the_official_loop_on_random_questions():
    rng = random.Random(0)
    pool = ["yes", "no", "2", "two", "t-shirt", "t shirt", "1,000", "1000", "the dog", "dog", "red.", "red", "don't"]
    predictions = ["Yes", "2", "Two", "T-shirt", "1,000", "the Dog", "red", "dont", "no\n", "\tdog"]
    answers, expected, chosen = [], [], []
    for _ in range(300):
        gt = [rng.choice(pool[: rng.randint(1, len(pool))]) for _ in range(10)]
        prediction = rng.choice(predictions)
        dicts = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(gt)]
        expected.append(_official_question_accuracy(prediction, dicts))
        answers.append(gt)
        chosen.append(prediction)
    accuracy, per_question = vqa_accuracy(chosen, answers, return_per_question=True)
    assert per_question == pytest.approx(expected, abs=1e-12)
    assert accuracy == pytest.approx(sum(expected) / len(expected))
    assert 0.0 < accuracy < 1.0 and len(set(expected)) > 3  # the draw exercised several score levels
