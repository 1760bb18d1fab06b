"""easy-VQA (the `easy-vqa` PyPI package: data only, installed with this package) as a `datasets.DatasetDict`.

4,000 train / 1,000 test 64x64 PNG images of one coloured shape, 38,575 / 9,673 questions, 13 answers (3 shapes,
8 colours, yes / no). The package stores per split `questions.json` ([question, answer, image id] triples) and
`images/<id>.png`; image ids restart at 0 in each split.

Same schema as VQA v2 (`vqa.py`), one row per question:
| column                   | easy-VQA                                                                    |
|--------------------------|-----------------------------------------------------------------------------|
| `question_id`            | the question's index in its split                                           |
| `image_id`, `image`      | the image id and its PNG (Image(), decoded lazily)                          |
| `question`               | the question                                                                |
| `answers`                | a list of one: [answer] (one answer per question, not ten)                  |
| `multiple_choice_answer` | the answer                                                                  |
| `answer_type`            | "yes/no" or "other"                                                         |
| `question_type`          | "yes/no", "shape" or "color", from the answer                               |
`vqa_accuracy` scores a list of one answer as normalised exact match, so it is plain accuracy here.

`load_easy_vqa_captions` describes each image instead ("a red circle", LLaVA's alignment stage on easy-VQA): the
package ships no labels beside the questions, so each image's shape and colour are read from its own questions and
answers ("what color is the triangle?" → red, and the shape is a triangle; "is no blue shape present?" → no: it is
blue). Images whose questions do not settle both are left out; questions that contradict each other raise.
"""

from __future__ import annotations

import re
from collections import defaultdict

import datasets

from .images import check_on_missing_image, keep_rows, unusable_images
from .vqa import VQA_FEATURES

EASY_VQA_SHAPES = ("circle", "rectangle", "triangle")
EASY_VQA_SPLITS = ("train", "test")
_INSTALL_HINT = "easy-VQA is read from the easy-vqa package: pip install easy-vqa"


def _easy_vqa():
    try:
        import easy_vqa
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return easy_vqa


def _question_type(answer: str) -> str:
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in EASY_VQA_SHAPES else "color"


_NEGATIONS = ("not", "no")
CAPTION_FEATURES = datasets.Features({
    "image_id": datasets.Value("int64"), "image": datasets.Image(), "caption": datasets.Value("string"),
    "shape": datasets.Value("string"), "color": datasets.Value("string"),
})  # fmt: skip


def easy_vqa_answers() -> list[str]:
    """The 13 answers, in the package's order (`answers.txt`)."""
    return _easy_vqa().get_answers()


def _split(split: str, on_missing_image: str, verify_images: bool) -> datasets.Dataset:
    easy_vqa = _easy_vqa()
    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    missing = {image_id: f"<easy_vqa>/data/{split}/images/{image_id}.png" for image_id in image_ids}
    bad = unusable_images({**missing, **paths}, on_missing_image, verify_images, source=f"easy-VQA {split}")
    kept = keep_rows(image_ids, bad)
    columns = {
        "question_id": kept,
        "image_id": [image_ids[i] for i in kept],
        "image": [paths[image_ids[i]] for i in kept],
        "question": [questions[i] for i in kept],
        "answers": [[answers[i]] for i in kept],
        "multiple_choice_answer": [answers[i] for i in kept],
        "answer_type": ["yes/no" if answers[i] in ("yes", "no") else "other" for i in kept],
        "question_type": [_question_type(answers[i]) for i in kept],
    }
    return datasets.Dataset.from_dict(columns, features=VQA_FEATURES)


def _facts(question: str, answer: str, colors: set[str]) -> dict[str, str]:
    """What one question and its answer say about the image's shape and colour: {"shape"?: ..., "color"?: ...}."""
    words = re.findall(r"[a-z]+", question.lower())
    named = {("shape" if word in EASY_VQA_SHAPES else "color"): word for word in words
             if word in EASY_VQA_SHAPES or word in colors}  # fmt: skip
    if answer in EASY_VQA_SHAPES:  # "what is the blue shape?" → triangle: also names the colour
        return {**named, "shape": answer}
    if answer in colors:  # "what color is the triangle?" → red
        return {**named, "color": answer}
    present = (answer == "yes") != any(word in _NEGATIONS for word in words)
    return named if present and len(named) == 1 else {}  # a "no" only rules one value out


def easy_vqa_image_labels(split: str = "train") -> dict[int, dict[str, str]]:
    """{image_id: {"shape": ..., "color": ...}} for the images of `split` whose questions settle both.

    Raises:
        ValueError: two questions about one image disagree (the package's data would be corrupt).
    """
    if split not in EASY_VQA_SPLITS:
        raise ValueError(f"split must be one of {EASY_VQA_SPLITS}, got {split!r}")
    easy_vqa = _easy_vqa()
    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    colors = set(easy_vqa.get_answers()) - set(EASY_VQA_SHAPES) - {"yes", "no"}
    labels: dict[int, dict[str, str]] = defaultdict(dict)
    for question, answer, image_id in zip(questions, answers, image_ids, strict=True):
        for field, value in _facts(question, answer, colors).items():
            known = labels[image_id].setdefault(field, value)
            if known != value:
                raise ValueError(f"easy-VQA {split} image {image_id}: {question!r} → {answer!r} says its {field} is "
                                 f"{value}, another question says {known}")  # fmt: skip
    return {image_id: facts for image_id, facts in sorted(labels.items()) if len(facts) == 2}


def load_easy_vqa_captions(splits: tuple[str, ...] = EASY_VQA_SPLITS) -> datasets.DatasetDict:
    """One row per easy-VQA image whose shape and colour its questions settle (3,542 of 4,000 train, 880 of 1,000
    test images): `image_id`, `image`, `caption` ("a red circle"), `shape`, `color`."""
    if isinstance(splits, str) or not set(splits) <= set(EASY_VQA_SPLITS) or not splits:
        raise ValueError(f"splits must be a non-empty tuple of {', '.join(EASY_VQA_SPLITS)}, got {splits!r}")
    result = datasets.DatasetDict()
    for split in splits:
        labels = easy_vqa_image_labels(split)
        paths = getattr(_easy_vqa(), f"get_{split}_image_paths")()
        rows = [{"image_id": image_id, "image": paths[image_id], "caption": f"a {facts['color']} {facts['shape']}",
                 **facts} for image_id, facts in labels.items()]  # fmt: skip
        columns = {name: [row[name] for row in rows] for name in CAPTION_FEATURES}
        result[split] = datasets.Dataset.from_dict(columns, features=CAPTION_FEATURES)
    return result


def load_easy_vqa(
    splits: tuple[str, ...] = EASY_VQA_SPLITS, *, on_missing_image: str = "raise", verify_images: bool = False
) -> datasets.DatasetDict:
    """easy-VQA from the installed `easy-vqa` package (schema in the module docstring); no download.

    Args:
        splits: "train" and / or "test".
        on_missing_image: "raise" or "skip" (see `images.py`); verify_images: decode each image once at load time.
    Raises:
        ImportError when `easy-vqa` is not installed; ValueError for an unknown split or a missing image.
    """
    check_on_missing_image(on_missing_image)
    if isinstance(splits, str) or not set(splits) <= set(EASY_VQA_SPLITS) or not splits:
        raise ValueError(f"splits must be a non-empty tuple of {', '.join(EASY_VQA_SPLITS)}, got {splits!r}")
    return datasets.DatasetDict({split: _split(split, on_missing_image, verify_images) for split in splits})


# The question types the demo's examples cycle through (easy-VQA's `question_type`).
QUESTION_TYPES = ("yes/no", "shape", "color")


def pick_examples(split, count: int) -> list[int]:
    """Row indices of `count` questions about different images, cycling through the question types."""
    picked, images = [], set()
    for index, (image_id, kind) in enumerate(zip(split["image_id"], split["question_type"], strict=True)):
        if image_id not in images and kind == QUESTION_TYPES[len(picked) % len(QUESTION_TYPES)]:
            picked.append(index)
            images.add(image_id)
            if len(picked) == count:
                break
    return picked


def example_questions(count: int = 4) -> list[tuple]:
    """`count` easy-VQA test images and questions, picked as the demo's examples are (`pick_examples`): [(PIL image,
    question)], the examples of the Space app (`sharing.space`)."""
    split = load_easy_vqa(("test",))["test"]
    rows = split.select(pick_examples(split, count))
    return list(zip(rows["image"], rows["question"], strict=True))


__all__ = [
    "EASY_VQA_SHAPES",
    "QUESTION_TYPES",
    "easy_vqa_answers",
    "easy_vqa_image_labels",
    "example_questions",
    "load_easy_vqa",
    "load_easy_vqa_captions",
    "pick_examples",
]
