"""Fetches transformers' own test utilities (ModelTesterMixin and its neighbours) for the installed transformers.

    python tools/upstream_tests.py     # with the venv whose transformers the tests run against

transformers' sdist ships `tests/test_modeling_common.py`, `test_configuration_common.py`, `test_backbone_common.py`
and `test_pipeline_mixin.py`, but not the modules they import from its `tests/` package: `generation/test_utils.py`
(GenerationTesterMixin), `exporters/test_export.py` (ExportTesterMixin, ModelTesterMixin's base),
`utils/test_configuration_utils.py` (config_common_kwargs) and, before 5.25, `pipelines/test_pipelines_*.py`. This
script downloads the sdist through pip (`pip download --no-binary transformers`) into `.upstream/` (git-ignored),
extracts the files the mixins need as the package `transformers_tests`, and writes a placeholder for every module the
sdist lacks, so that the mixins import: a missing `...Mixin` becomes a class whose one test skips (saying its tests
are missing), any other missing class one whose instantiation skips the test, any other name a value whose use skips
it, each naming the file that is missing. Nothing of transformers' test code is kept in this repository;
`tests/upstream/` holds the test modules built on it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tarfile
from pathlib import Path

import transformers

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".upstream"
PACKAGE = "transformers_tests"
# The mixins the test modules use; what they import from transformers' `tests/` package is followed from here.
SEEDS = (
    "test_modeling_common.py",
    "test_configuration_common.py",
    "test_backbone_common.py",
    "test_pipeline_mixin.py",
    "generation/test_utils.py",
)
# Files the mixins and tests/upstream/conftest.py read from transformers' repository root, with what stands for each
# when the sdist lacks it: the pipeline mixin's list of the Hub's tiny test models (none of them is ours; without an
# entry a pipeline test skips, saying so), and pyproject.toml for the pytest markers transformers registers.
DATA_FILES = {
    "tests/utils/tiny_model_summary.json": "{}\n",
    "pyproject.toml": "[tool.pytest.ini_options]\nmarkers = []\n",
}
# What the mixins import beyond the project's lock (transformers' "testing" extra), installed into .upstream/site so
# that the venv keeps holding exactly the lock.
TEST_REQUIREMENTS = ("parameterized==0.9.0",)

PLACEHOLDER = '''"""Placeholder written by tools/upstream_tests.py: transformers' sdist has no tests/{path}."""

import unittest

MISSING = "transformers {version}'s sdist has no tests/{path}"


class _MissingValue:
    """Stands for a value of the missing module: any use of it skips the test."""

    def __getattr__(self, name):
        raise unittest.SkipTest(MISSING)

    def __iter__(self):
        raise unittest.SkipTest(MISSING)


class _MissingClass:
    """Stands for a class of the missing module: instantiating it skips the test."""

    def __init__(self, *args, **kwargs):
        raise unittest.SkipTest(MISSING)
'''


def upstream_dir(version: str) -> Path:
    """Where the test utilities of transformers `version` are extracted (the parent of the `transformers_tests`
    package, to put on sys.path)."""
    return CACHE / f"transformers-{version}"


def download_sdist(version: str) -> Path:
    """transformers' sdist for `version`, downloaded once through pip into .upstream/sdist/."""
    target = CACHE / "sdist"
    sdist = target / f"transformers-{version}.tar.gz"
    if not sdist.exists():
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "transformers"]
        subprocess.run([*command, f"transformers=={version}", "-d", str(target)], check=True)
    return sdist


def relative_imports(source: str, module_path: str) -> dict[str, list[str]]:
    """{path of the imported module inside tests/: the names imported} for every `from .x.y import a, b` of
    `source`, the module at `module_path` (inside tests/)."""
    package = Path(module_path).parent
    imports: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            base = package
            for _ in range(node.level - 1):
                base = base.parent
            path = (base / node.module.replace(".", "/")).with_suffix(".py").as_posix()
            imports.setdefault(path, []).extend(alias.name for alias in node.names)
    return imports


def placeholder(path: str, names: list[str], version: str) -> str:
    """A module that stands for the missing tests/`path`, defining `names`."""
    lines = [PLACEHOLDER.format(path=path, version=version)]
    for name in sorted(set(names)):
        if name.endswith("Mixin"):  # a test class's base: its one test says that its tests are missing
            test = "test_" + "".join(f"_{c.lower()}" if c.isupper() else c for c in name).strip("_")
            lines.append(
                f"\n\nclass {name}:\n    def {test}_missing(self):\n        raise unittest.SkipTest(MISSING)\n"
            )
        elif name[:1].isupper():
            lines.append(f"\n\nclass {name}(_MissingClass):\n    pass\n")
        else:
            lines.append(f"\n{name} = _MissingValue()\n")
    return "".join(lines)


def extract(version: str) -> list[str]:
    """Extracts the seeds, what they import and the data files into upstream_dir(version); returns a report line per
    file (from the sdist, or missing and what stands for it)."""
    root, report = upstream_dir(version), []
    with tarfile.open(download_sdist(version)) as sdist:
        files = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if m.isfile() and "/" in m.name}

        def copy(path: str, target: Path) -> bytes:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content := sdist.extractfile(files[path]).read())
            report.append(f"sdist      {path}")
            return content

        pending, seen, wanted = list(SEEDS), set(), {}
        while pending:
            path = pending.pop()
            if path in seen or f"tests/{path}" not in files:
                continue
            seen.add(path)
            source = copy(f"tests/{path}", root / PACKAGE / path).decode()
            for imported, names in relative_imports(source, path).items():
                wanted.setdefault(imported, []).extend(names)
                pending.append(imported)
        for path, stand_in in DATA_FILES.items():
            if path in files:
                copy(path, root / path)
            else:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(stand_in)
                report.append(f"missing    {path} -> placeholder {stand_in.strip()}")
    # The mixins import transformers from the repository's src/ too (direct_transformers_import): the installed one.
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "transformers").symlink_to(Path(transformers.__file__).parent, target_is_directory=True)
    report.append(f"installed  src/transformers -> {Path(transformers.__file__).parent}")
    for path in sorted(set(wanted) - seen):
        (root / PACKAGE / path).parent.mkdir(parents=True, exist_ok=True)
        (root / PACKAGE / path).write_text(placeholder(path, wanted[path], version))
        report.append(f"missing    tests/{path} -> placeholder for {', '.join(sorted(set(wanted[path])))}")
    report += [f"missing    tests/{path} (nothing imports it)" for path in SEEDS if path not in seen | set(wanted)]
    for directory in [root / PACKAGE, *(p for p in (root / PACKAGE).rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    return report


def install_test_requirements() -> None:
    """TEST_REQUIREMENTS into .upstream/site (tests/upstream/conftest.py puts it on sys.path)."""
    site = CACHE / "site"
    stamp = site / "requirements.txt"
    if not stamp.exists() or stamp.read_text().split() != list(TEST_REQUIREMENTS):
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(site)]
        subprocess.run([*command, *TEST_REQUIREMENTS], check=True)
        stamp.write_text("\n".join(TEST_REQUIREMENTS) + "\n")


def main() -> None:
    version = importlib.metadata.version("transformers")
    install_test_requirements()
    done = upstream_dir(version) / "report.txt"
    if not done.exists():
        report = extract(version)
        done.write_text("\n".join(report) + "\n")
    print(f"transformers {version}'s test utilities in {upstream_dir(version).relative_to(ROOT)}:")
    print(done.read_text(), end="")


if __name__ == "__main__":
    main()
