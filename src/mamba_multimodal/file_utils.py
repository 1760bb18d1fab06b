"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING_PREFIX = ".staging-"  # the temporary folder `staged_into` writes into, inside its target


@contextmanager
def staged_into(directory: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty hidden temporary folder inside `directory` (so on its file system, and writable wherever
    `directory` is); when the block succeeds, every file written there is moved into `directory`, keeping its
    relative path, with `os.replace` (atomic per file); on an error nothing is moved. The temporary folder is
    removed either way."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=STAGING_PREFIX))
    try:
        yield staging
        for produced in sorted(staging.rglob("*")):
            if produced.is_file():
                target = directory / produced.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(produced, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def final_name(folder: str | os.PathLike) -> str:
    """The name `folder` will have once written: a `staged_into` staging folder's is its target's."""
    folder = Path(folder).resolve()
    return folder.parent.name if folder.name.startswith(STAGING_PREFIX) else folder.name


__all__ = ["STAGING_PREFIX", "final_name", "staged_into"]
