"""A restricted unpickler for data files: numpy arrays, numpy scalars, lists, dicts, tuples, strings, bytes, numbers.

`pickle.load` runs whatever a file asks for (`os.system`, `builtins.eval`, ...). Plain containers, strings and
numbers are built by pickle opcodes; everything else is fetched through `Unpickler.find_class`, which here answers
only for the handful of globals a numpy array or scalar needs, and raises `pickle.UnpicklingError` naming the global
for anything else, before calling it. What numpy writes (numpy 1.x names `numpy.core.*`, numpy 2.x `numpy._core.*`):
    ndarray           numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype (protocols 0-4)
                      numpy.core.numeric._frombuffer, numpy.dtype (protocol 5)
    numpy scalar      numpy.core.multiarray.scalar, numpy.dtype
    bytes in protocols 0-2 (array buffers included)   _codecs.encode(text, "latin1"), allowed for latin-1 only
"""

from __future__ import annotations

import importlib
import os
import pickle

import numpy as np


def _numpy_core(submodule: str):
    """numpy._core.<submodule> (numpy >= 2), else numpy.core.<submodule> (numpy 1.x)."""
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{submodule}")


def _latin1_encode(text, encoding="latin1"):
    """`_codecs.encode` as protocol-2 pickles use it for bytes: a latin-1 str -> bytes, and nothing else."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") != "latin1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}: only latin-1 text is allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` knows only `ALLOWED_GLOBALS`; any other global raises UnpicklingError."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load the global {module}.{name}: data pickles may only hold numpy arrays, numpy "
                "scalars, lists, dicts, tuples, strings, bytes and numbers"
            ) from None


def safe_load_pickle(path: str | os.PathLike):
    """Reads a pickle file through `RestrictedUnpickler`; nothing in the file is executed.

    `encoding="latin1"` also reads numpy arrays pickled by Python 2. Raises `pickle.UnpicklingError` naming the file
    and the refused global when the file holds anything but data.
    """
    with open(path, "rb") as file:
        try:
            return RestrictedUnpickler(file, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f"{os.fspath(path)}: {error}") from error


__all__ = ["ALLOWED_GLOBALS", "RestrictedUnpickler", "safe_load_pickle"]
