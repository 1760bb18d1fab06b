"""The official VQA accuracy, re-implemented from GT-Vision-Lab/VQA `PythonEvaluationTools/vqaEvaluation/vqaEval.py`.

Per question, with ground-truth answers g_1..g_n (n = 10 in VQA v2) and a prediction p:
    1. p: "\\n" and "\\t" become spaces, strip(), then `process_punctuation`, then `process_digit_article`.
    2. g: only when the answers are not all identical, `process_punctuation` each (the released answers are already
       lowercase, digit-mapped and article-free; the official code does nothing else to them).
    3. acc = mean over i of min(1, #{j != i : g_j == p} / 3)     (the 10 leave-one-out subsets of 9 humans)
so 1, 2, 3, 4 matching humans score 0.3, 0.6, 0.9, 1.0. Overall accuracy = mean over questions, in [0, 1] (the
official script reports round(100 * mean, 2)).

TextVQA (`normalization="textvqa"`): LLaVA's eval_textvqa.py scores with m4c_evaluator.py's TextVQAAccuracyEvaluator
(the EvalAI answer processor of mmf, also lmms-eval's textvqa), which differs from step 1-2 in two ways: every answer,
the prediction and all ground-truth answers alike, goes through the same processing, and that processing starts with
`word_tokenize`: lowercase, delete "," and "?", "'s" -> " 's", strip (TextVQA's answers are raw human text:
"Coca-Cola", "STOP"). The same leave-one-out formula (step 3) follows.

Departures, both deliberate: a question with a single ground-truth answer (easy-VQA) would score 0 whatever the
prediction under step 3 (no other human is left), so it scores normalised exact match instead: 1 when the answer,
normalised as the prediction (step 1), equals the normalised prediction, else 0. And values are unrounded floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# vqaEval.py `punct`: 21 characters; the apostrophe, ":" and "." are not in it.
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
# vqaEval.py `manualMap` (whole words only) and `articles`.
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = ("a", "an", "the")
# vqaEval.py `contractions`, all 120 entries as released. Words are lowercased before the look-up, so the four keys
# with capitals never match; "somebody'd" -> "somebodyd" is reversed in the original and kept so.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",}  # fmt: skip


_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
# The official `(?!<=\d)` was meant as a look-behind; as written it is a no-op look-ahead for the text "<=" + digit,
# so every "." not followed by a digit goes. Kept as written: this is what the official scores were computed with.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_OFFICIAL_PERIOD_COUNT = 32  # the official `periodStrip.sub("", text, re.UNICODE)` passes re.UNICODE (32) as count


# ------------------------------------------------------------------------------------------- normalisation
def process_punctuation(text: str) -> str:
    """vqaEval.py `processPunctuation`: delete or space out the 21 punctuation marks, then delete periods.

    A mark is deleted when the original text has it next to a space, or has a digit-comma-digit anywhere; otherwise
    each occurrence becomes a space: "t-shirt" -> "t shirt", "hot-dog, 1,2" -> "hotdog 12", "yes." -> "yes", "2.5"
    stays.
    """
    has_digit_comma = _COMMA_STRIP.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if mark + " " in text or " " + mark in text or has_digit_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_STRIP.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """vqaEval.py `processDigitArticle`: lowercase, split on whitespace, number words -> digits, drop articles, fix
    contractions, join with single spaces. "The Two dogs" -> "2 dogs", "dont" -> "don't"."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES]
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """The official normalisation of a predicted answer (step 1 of the module docstring)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def normalize_textvqa_answer(text: str) -> str:
    """m4c_evaluator.py's EvalAIAnswerProcessor, for predictions and ground-truth answers alike: `word_tokenize`
    (lowercase, delete "," and "?", "'s" -> " 's", strip), then step 1. "Coca-Cola's" -> "coca cola 's"."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    # Its digit-comma-digit test (a look-around variant of vqaEval's) can never match once the commas are gone, so
    # vqaEval's process_punctuation gives the same text.
    return normalize_answer(text)


# ----------------------------------------------------------------------------------------------- accuracy
def _answer_strings(index: int, answers) -> list[str]:
    """One question's ground truth as strings: a string, a list of strings, or VQA's [{"answer": ...}, ...]."""
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, Sequence) or len(answers) == 0:
        raise ValueError(f"answers[{index}] must be a non-empty list of answers, got {answers!r}")
    strings = [answer["answer"] if isinstance(answer, Mapping) else answer for answer in answers]
    if not all(isinstance(answer, str) for answer in strings):
        raise ValueError(f"answers[{index}] must hold strings (or {{'answer': str}} dicts), got {answers!r}")
    return strings


NORMALIZATIONS = ("vqa", "textvqa")


def question_accuracy(prediction: str, answers, normalization: str = "vqa") -> float:
    """Official VQA accuracy of one prediction against its ground-truth answers (see the module docstring);
    normalization "vqa" (vqaEval.py) or "textvqa" (m4c_evaluator.py)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
    answers = _answer_strings(0, answers)
    normalize = normalize_textvqa_answer if normalization == "textvqa" else normalize_answer
    prediction = normalize(prediction)
    if len(answers) == 1:
        return float(normalize(answers[0]) == prediction)
    if normalization == "textvqa":
        answers = [normalize(answer) for answer in answers]
    elif len(set(answers)) > 1:
        answers = [process_punctuation(answer) for answer in answers]
    matches = [answer == prediction for answer in answers]
    total = sum(matches)
    return sum(min(1.0, (total - own) / 3) for own in matches) / len(answers)


def vqa_accuracy(
    predictions: Sequence[str], answers: Sequence, return_per_question: bool = False, normalization: str = "vqa"
):
    """The official VQA accuracy of a set of predictions, as a fraction in [0, 1].

    Args:
        predictions: one predicted answer (str) per question.
        answers: per question, its ground-truth answers: a list of strings (VQA v2: 10), a list of VQA annotation
            dicts {"answer": str, ...}, or a single string / a list of one (scored as normalised exact match).
        return_per_question: also return the list of per-question accuracies.
        normalization: "vqa" (VQA v2, vqaEval.py) or "textvqa" (TextVQA, m4c_evaluator.py: see the module docstring).
    Returns:
        the mean accuracy over questions, or (mean, per-question accuracies) with `return_per_question`.
    Raises:
        ValueError: empty input, different lengths, a question without answers, or a non-string prediction.
    """
    if isinstance(predictions, str) or isinstance(answers, str):
        raise ValueError("predictions and answers must be sequences with one entry per question, not a single string")
    if len(predictions) == 0:
        raise ValueError("predictions is empty: VQA accuracy needs at least one question")
    if len(predictions) != len(answers):
        raise ValueError(f"predictions has {len(predictions)} questions but answers has {len(answers)}")
    per_question = []
    for index, (prediction, question_answers) in enumerate(zip(predictions, answers, strict=True)):
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{index}] must be a string, got {type(prediction).__name__}")
        per_question.append(question_accuracy(prediction, _answer_strings(index, question_answers), normalization))
    accuracy = sum(per_question) / len(per_question)
    return (accuracy, per_question) if return_per_question else accuracy


__all__ = [
    "ARTICLES",
    "CONTRACTIONS",
    "NORMALIZATIONS",
    "NUMBER_WORDS",
    "PUNCTUATION",
    "normalize_answer",
    "normalize_textvqa_answer",
    "process_digit_article",
    "process_punctuation",
    "question_accuracy",
    "vqa_accuracy",
]
