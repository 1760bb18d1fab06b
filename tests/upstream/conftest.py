"""transformers' own model tests over every model class: the modules here build on `ModelTesterMixin`,
`PipelineTesterMixin` and `GenerationTesterMixin` from transformers' test utilities for the installed transformers,
which `make test-upstream` fetches from its sdist into .upstream/ (tools/upstream_tests.py). Only that target
collects these modules (it sets UPSTREAM_TESTS=1): `pytest tests` / `make test` leave them out, fetched or not."""

import importlib.metadata
import os
import sys
import tomllib
from pathlib import Path


def name_our_classes_in_auto_tables():
    """transformers' mixins pick a class's labels and training by its name in the Auto mappings' name tables
    (`MODEL_MAPPING_NAMES`...), which list transformers' own models only; the package's `register_all` registers its
    classes with the Auto classes, and here their names join those tables the same way, so that the mixins treat
    them as they treat transformers' models (base models and backbones not trained, classifiers given labels)."""
    import transformers

    from mamba_multimodal.registry import FAMILIES

    for family in FAMILIES.values():
        for auto_name, model_class in family.auto_models.items():
            names = getattr(transformers, auto_name)._model_mapping._model_mapping
            names.setdefault(family.model_type, model_class.__name__)


CACHE = Path(__file__).resolve().parents[2] / ".upstream"
UPSTREAM = CACHE / f"transformers-{importlib.metadata.version('transformers')}"

if os.environ.get("UPSTREAM_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]
elif (UPSTREAM / "transformers_tests" / "test_modeling_common.py").exists():
    sys.path[:0] = [str(UPSTREAM), str(CACHE / "site")]  # the mixins, and what they import beyond the lock
    name_our_classes_in_auto_tables()  # now: found while collecting `pytest tests`, it misses the session hooks
else:
    raise RuntimeError(f"UPSTREAM_TESTS=1, but {UPSTREAM} holds no transformers tests: run tools/upstream_tests.py")


# Markers of transformers' mixins and testing_utils that its own conftest.py (not in the sdist) registers.
CONFTEST_MARKERS = ("accelerate_tests", "torch_compile_test", "is_pipeline_test", "is_staging_test", "is_agent_test")


def pytest_configure(config):
    """transformers' markers (the project runs with --strict-markers): its pyproject.toml's and its conftest's."""
    pyproject = UPSTREAM / "pyproject.toml"
    markers = (
        tomllib.loads(pyproject.read_text())["tool"]["pytest"]["ini_options"]["markers"] if pyproject.exists() else []
    )
    for marker in [*markers, *CONFTEST_MARKERS]:
        config.addinivalue_line("markers", marker)
