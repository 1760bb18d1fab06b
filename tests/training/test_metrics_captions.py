"""Caption metrics through pycocoevalcap's scorers with the Python PTB-style tokenisation: hand-worked BLEU-4 and
ROUGE-L, identical captions, CIDEr's dependence on the evaluated set, and clear errors."""

import sys

import pytest

from mamba_multimodal.training.metrics import caption_metrics, tokenize_caption

pytest.importorskip("pycocoevalcap")


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("A man's T-shirt, (red).", "a man 's t-shirt red"),
        ('He said "don\'t" ... twice!', "he said do n't twice"),
        ("1,000 people; 2.5 km: ok?", "1,000 people 2.5 km ok"),
        ("a dog - running\nfast", "a dog running fast"),
        ("A cat & a dog at 5 o'clock", "a cat & a dog at 5 o'clock"),  # "&" is not in PTB's punctuation list
    ],
)
def test_tokenize_caption_lowercases_splits_clitics_and_drops_ptb_punctuation(caption, expected):
    assert tokenize_caption(caption) == expected


def test_hand_worked_bleu4_and_rouge_l():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3 (same length: no brevity penalty) -> BLEU-4 = (1/12) ** (1/4);
    # LCS "the cat sat on mat" = 5 of 6 words on both sides -> ROUGE-L F(beta=1.2) = 5/6.
    scores = caption_metrics({1: "The cat sat on the mat."}, {1: ["the cat sat on a mat"]})
    assert scores["BLEU-4"] == pytest.approx((1 / 12) ** 0.25, rel=1e-6)
    assert scores["ROUGE-L"] == pytest.approx(5 / 6)
    assert scores["CIDEr"] == 0.0  # one image: every n-gram has IDF log(1/1) = 0


def test_identical_captions_score_bleu4_one_and_the_highest_cider():
    references = {
        1: ["a man riding a red bicycle down the street", "a person on a bike"],
        2: ["two dogs playing with a ball in the park", "dogs in a park"],
        3: ["a plate of food with broccoli and rice", "a meal on a white plate"],
    }
    scores = caption_metrics({key: captions[0] for key, captions in references.items()}, references)
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE-L"] > 0.6  # the second reference differs
    worse = caption_metrics({1: "a dog", 2: "a man riding", 3: "a street"}, references)
    assert scores["CIDEr"] > 3.0 and worse["CIDEr"] < 0.5 * scores["CIDEr"]
    single = {key: captions[:1] for key, captions in references.items()}
    assert caption_metrics({key: c[0] for key, c in single.items()}, single)["CIDEr"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        ({}, {}, "empty"),
        ({1: "a cat"}, {2: ["a cat"]}, "same ids"),
        ({1: ["a cat"]}, {1: ["a cat"]}, "must be one caption"),
        ({1: "a cat"}, {1: []}, "non-empty list"),
        ({1: "a cat"}, {1: "a cat"}, "non-empty list"),
    ],
)
def test_bad_input_raises_a_clear_error(predictions, references, message):
    with pytest.raises(ValueError, match=message):
        caption_metrics(predictions, references)


def test_missing_pycocoevalcap_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"mamba-multimodal\[captions\]"):
        caption_metrics({1: "a cat"}, {1: ["a cat"]})
