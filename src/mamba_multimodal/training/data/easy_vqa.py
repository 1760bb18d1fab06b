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
"""

from __future__ import annotations

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


__all__ = ["EASY_VQA_SHAPES", "easy_vqa_answers", "load_easy_vqa"]
