"""The compiled CPU path of `ssm.py` and `ssm_coupled.py`: builds `ssm_cpu.cpp` on first use and wraps its two
scans (selective and coupled) in autograd Functions. The same library holds the fused decode step of the Mamba LM
(`mamba_decode_step`, `linear_rows`), which `mamba_decode.py` calls.

The kernel is plain C++ with OpenMP, compiled by the system compiler into a shared library that ctypes loads: no
torch headers and no ninja, so the build takes a few seconds and needs only what `pip install` of this package
already needs (a C++ compiler). When no compiler works, `load()` returns None and `ssm.py` falls back to its
pure-PyTorch path with one warning.

Cache: the library lives in `<cache>/kernels/<key>/libssm_cpu.so`, where <cache> is `$MAMBA_MULTIMODAL_CACHE`, else
`$XDG_CACHE_HOME/mamba_multimodal`, else `~/.cache/mamba_multimodal`; when that folder cannot be determined or written
(no HOME, a read-only home), a private per-user folder in the system temp dir. <key> hashes the source, the compiler
and its version, the flags and the CPU (the code is built with `-march=native`, so two different CPUs never share it:
x86's model and flags, ARM's implementer, part and features). A build writes into a temporary folder beside its
target and renames the finished library into place, so a concurrent or interrupted build never leaves a partial file.

Floating point: the kernel is compiled with `-ffast-math` into an object file and linked into the shared library in
a separate step without it. With `-ffast-math` on the link line GCC would link `crtfastmath.o`, whose constructor
turns on flush-to-zero / denormals-are-zero for the whole process when the library loads (after which
`torch.tensor([1e-39]) * 1` is 0 everywhere); linked this way, loading the kernel changes nothing outside it.

Processes and fork: the kernel runs on `torch.get_num_threads()` OpenMP threads (GCC's libgomp, which Linux torch
wheels load too). libgomp's thread pool does not survive `fork()`: once the parent has run a parallel region, a
parallel region in a forked child waits forever for threads that only existed in the parent. torch's own ops hang there
too, which is why DataLoader workers run torch on one thread; the kernel works in them and gives the parent's numbers.
In any process started by fork the kernel runs on one thread (with one warning if torch asks for more), so it does not
hang there; processes started with "spawn" or "forkserver" use all their threads.

Environment: `MAMBA_MULTIMODAL_CACHE` moves the cache; `CXX` picks the compiler; `MAMBA_MULTIMODAL_COMPILE_TIMEOUT`
(seconds, default 120) bounds each compiler call, after which the compiler is killed and the pure-PyTorch path is
used.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

_SOURCE = Path(__file__).with_name("ssm_cpu.cpp")
# Fast-math belongs on the compile step only: on the link line it would link crtfastmath.o (see the module docstring).
_COMPILE_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-std=c++17"]
_LINK_FLAGS = ["-shared", "-fopenmp"]
COMPILE_TIMEOUT_S = 120.0  # per compiler call; MAMBA_MULTIMODAL_COMPILE_TIMEOUT overrides it
# /proc/cpuinfo keys that identify what -march=native compiles for (ARM has no "model name" or "flags" lines).
# Values that change at run time (MHz, BogoMIPS) are left out.
_CPU_KEYS = frozenset(
    {"vendor_id", "cpu family", "model", "model name", "flags"}  # x86
    | {"CPU implementer", "CPU architecture", "CPU variant", "CPU part", "Features"}  # ARM
    | {"cpu", "isa", "uarch"}  # POWER, RISC-V
)
_c_float_p = ctypes.POINTER(ctypes.c_float)
_i64 = ctypes.c_int64
build_error: str | None = None  # why `load()` returned None, for the error of a forced "cpu" backend
_forked = False  # True in a process started by fork(): the kernel then runs on one thread


def _cpu_fields(cpuinfo: str | None = None) -> set[tuple[str, str]]:
    """The distinct (key, value) lines of /proc/cpuinfo (or of `cpuinfo`); none where it cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    pairs = (line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    return {(key.strip(), value.strip()) for key, value in pairs}


def _cpu_signature(cpuinfo: str | None = None) -> str:
    """What -march=native code depends on: the machine and the CPU's identifying /proc/cpuinfo lines (every distinct
    one, so a big.LITTLE chip lists both core types)."""
    identity = sorted(f"{key}: {value}" for key, value in _cpu_fields(cpuinfo) if key in _CPU_KEYS)
    return "\n".join([platform.machine(), platform.processor(), *identity])


def _compile_flags(cpuinfo: str | None = None) -> list[str]:
    """`_COMPILE_FLAGS`, with -DMAMBA_SPLIT_AVX512 on a CPU that runs each 512-bit operation as two 256-bit halves:
    AMD's family 25 with AVX-512 (Zen 4; Zen 3 has none). There the decode step's float32 products read AVX2's 8
    lanes (`Lanes` in ssm_cpu.cpp); the compiler cannot tell, since GCC 12 compiles Zen 4 as znver3."""
    fields = dict(_cpu_fields(cpuinfo))  # one value per key: every core of an AMD CPU has the same
    split = (
        fields.get("vendor_id") == "AuthenticAMD"
        and fields.get("cpu family") == "25"
        and "avx512f" in fields.get("flags", "").split()
    )
    return [*_COMPILE_FLAGS, "-DMAMBA_SPLIT_AVX512"] if split else list(_COMPILE_FLAGS)


def _compiler() -> str | None:
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def _compile_timeout() -> float:
    value = os.environ.get("MAMBA_MULTIMODAL_COMPILE_TIMEOUT")
    try:
        return float(value) if value else COMPILE_TIMEOUT_S
    except ValueError:
        logger.warning_once(f"MAMBA_MULTIMODAL_COMPILE_TIMEOUT must be a number of seconds, got {value!r}")
        return COMPILE_TIMEOUT_S


def _run(command: list[str]) -> str:
    """Runs a compiler command and returns its stdout; on timeout kills its whole process group (the driver and the
    cc1plus/ld it started) and raises subprocess.TimeoutExpired; a failure raises CalledProcessError."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "start_new_session": True}
    with subprocess.Popen(command, **options) as process:  # on leaving: pipes closed, the driver reaped
        try:
            stdout, stderr = process.communicate(timeout=_compile_timeout())
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                os.killpg(process.pid, signal.SIGKILL)
            raise
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    return stdout


def _cache_roots() -> Iterator[Path]:
    """Where the library may live, in order: $MAMBA_MULTIMODAL_CACHE, else $XDG_CACHE_HOME or ~/.cache (when a home
    can be determined); then a private folder in the temp dir (made only when asked for)."""
    if os.environ.get("MAMBA_MULTIMODAL_CACHE"):
        yield Path(os.environ["MAMBA_MULTIMODAL_CACHE"])
    elif os.path.isabs(os.environ.get("XDG_CACHE_HOME", "")):  # the XDG spec ignores a relative path
        yield Path(os.environ["XDG_CACHE_HOME"]) / "mamba_multimodal"
    else:
        try:
            home = Path.home()
        except RuntimeError:  # no HOME and no passwd entry
            home = None
        if home is not None:
            yield home / ".cache" / "mamba_multimodal"
    yield _private_temp_root()


def _private_temp_root() -> Path:
    """<tmp>/mamba_multimodal-<uid>, created 0700; a fresh folder when that one is not ours alone (a shared /tmp
    must not let another user plant the library this process loads)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"mamba_multimodal-{uid}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
        if root.is_dir() and not root.is_symlink() and info.st_uid == uid and not info.st_mode & 0o022:
            return root
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="mamba_multimodal-"))


def _usable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


@functools.cache
def kernel_source() -> str:
    """The C++ source of the kernel: `ssm_cpu.cpp` beside this file in the package; in a Hub folder (remote code,
    where transformers copies only `.py` files) the same text from the generated module `ssm_cpu_source.py`."""
    if _SOURCE.exists():
        return _SOURCE.read_text()
    from .ssm_cpu_source import SOURCE  # written by mamba_multimodal.hub into every remote-code bundle

    return SOURCE


def _library_path(compiler: str) -> Path:
    """The cached library for this source, compiler, flags and CPU: the first cache root that already has it or whose
    folder can be written."""
    version = _run([compiler, "--version"])
    key = hashlib.sha256(
        "\0".join(
            [kernel_source(), compiler, version, " ".join(_compile_flags() + _LINK_FLAGS), _cpu_signature()]
        ).encode()
    ).hexdigest()[:16]
    for root in _cache_roots():
        target = root / "kernels" / key / "libssm_cpu.so"
        if target.exists() or _usable(target.parent):
            return target
        logger.info(f"The kernel cache folder {target.parent} cannot be written; trying the next one.")
    return target  # the private temp folder, which _build reports on if even that fails


def _build(compiler: str, target: Path) -> None:
    """Compiles (with fast-math) and links (without it) in a temporary folder beside `target`, then renames the
    library into place: a concurrent reader sees no library or the whole library, and a failed, killed or timed-out
    build leaves nothing behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    try:
        source, obj, library = scratch / "ssm_cpu.cpp", scratch / "ssm_cpu.o", scratch / target.name
        source.write_text(kernel_source())  # the text the cache key hashes, wherever it came from
        _run([compiler, *_compile_flags(), "-c", str(source), "-o", str(obj)])
        _run([compiler, *_LINK_FLAGS, str(obj), "-o", str(library)])
        os.replace(library, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _declare(library: ctypes.CDLL) -> None:
    f, i = _c_float_p, ctypes.c_int
    strides = ctypes.POINTER(_i64)
    library.selective_scan_fwd.argtypes = [f] * 8 + [i, f, f, f, _i64, _i64, _i64, _i64, strides, i]
    library.selective_scan_bwd.argtypes = [f] * 8 + [i] + [f] * 12 + [_i64, _i64, _i64, _i64, strides, i]
    coupled_sizes = [_i64] * 5 + [i]
    library.coupled_scan_fwd.argtypes = [f] * 8 + [i, i, ctypes.c_float, f, f, f, *coupled_sizes]
    library.coupled_scan_bwd.argtypes = [f] * 8 + [i, i, ctypes.c_float] + [f] * 12 + coupled_sizes
    v, i64 = ctypes.c_void_p, _i64
    library.mamba_decode_step.argtypes = [ctypes.POINTER(v), i64, v, i, v, v, v] + [i64] * 6 + [ctypes.c_float, i]
    library.mamba_decode_step.argtypes += [v, v, i64, v, i]
    library.mamba_decode_step.restype = None
    library.linear_rows.argtypes = [v, v, i, f, f, i64, i64, i64, i]
    library.linear_rows.restype = None
    for function in ("selective_scan", "coupled_scan"):
        getattr(library, f"{function}_fwd").restype = None
        getattr(library, f"{function}_bwd").restype = None


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; None (and one warning) when it cannot be built or
    loaded, including when a compiler call runs past the timeout."""
    global build_error
    compiler = _compiler()
    if compiler is None:
        build_error = "no C++ compiler found (set CXX)"
        logger.warning(f"{build_error}: the selective scan runs on the slower pure-PyTorch path.")
        return None
    try:
        target = _library_path(compiler)
        if not target.exists():
            _build(compiler, target)
        library = ctypes.CDLL(str(target))
        _declare(library)
        return library
    except subprocess.TimeoutExpired as error:
        build_error = f"the compiler call `{' '.join(error.cmd)}` ran past {error.timeout:g} s and was killed"
    except (OSError, subprocess.CalledProcessError) as error:
        build_error = f"building it failed: {(getattr(error, 'stderr', '') or str(error))[-2000:]}"
    logger.warning(f"CPU scan kernel unavailable, {build_error}; using the pure-PyTorch path.")
    return None


def _mark_forked() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


def _threads() -> int:
    """torch's intra-op thread count; 1 in a process started by fork (libgomp's pool does not survive fork)."""
    threads = torch.get_num_threads()
    if _forked and threads > 1:
        logger.warning_once(
            f"The CPU scan kernel runs on 1 thread, not {threads}, in a process started by fork(): OpenMP's thread "
            "pool does not survive fork. Start processes with 'spawn' or 'forkserver' to use every thread."
        )
        return 1
    return threads


def _ptr(tensor: torch.Tensor | None):
    return None if tensor is None else ctypes.cast(tensor.data_ptr(), _c_float_p)


def _f32(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A contiguous float32 tensor: `tensor` itself when it is one, else one copy. A bf16 tensor is converted and laid
    out in that one copy (`.to(float32)` alone keeps a transposed layout, which `.contiguous()` would copy again;
    `.to` ignores `memory_format` when the dtype already fits, hence the two cases)."""
    if tensor is None:
        return None
    tensor = tensor.detach()
    if tensor.dtype == torch.float32:
        return tensor.contiguous()
    return tensor.to(torch.float32, memory_format=torch.contiguous_format)


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias) -> list[torch.Tensor | None]:
    """Contiguous float32 copies in the kernels' layout: B and C time-major, (..., n, l) → (..., l, n)."""
    return (
        [_f32(t) for t in (u, delta, A)]
        + [_f32(t.transpose(-1, -2)) for t in (B, C)]
        + [_f32(t) for t in (D, z, delta_bias)]
    )


def _scan_inputs(u, delta, A, B, C, D, z, delta_bias) -> list[torch.Tensor | None]:
    """The selective scan's float32 inputs: as `_kernel_inputs`, but u, delta and z in any layout (`_f32_any_layout`),
    their strides handed to the kernel."""
    f32 = _kernel_inputs(None, None, A, B, C, D, None, delta_bias)
    f32[0], f32[1], f32[6] = _f32_any_layout(u), _f32_any_layout(delta), _f32_any_layout(z)
    return f32


def _f32_any_layout(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A float32 (b, d, l) tensor that the selective scan reads through its strides: `tensor` itself when it is
    float32, whatever its layout (no copy); else one converted copy, tokens-last when `tensor` is (a projection's
    output transposed: unit stride along channels), so that the conversion streams rather than transposes."""
    if tensor is None:
        return None
    tensor = tensor.detach()
    if tensor.dtype == torch.float32:
        return tensor
    if _tokens_last(tensor):
        return tensor.transpose(1, 2).to(torch.float32, memory_format=torch.contiguous_format).transpose(1, 2)
    return tensor.to(torch.float32, memory_format=torch.contiguous_format)


def _tokens_last(tensor: torch.Tensor) -> bool:
    """Whether a (b, d, l) tensor has unit stride along its channels (a view of a (b, l, d) one)."""
    return tensor.stride(1) == 1 and tensor.shape[2] > 1


def _empty_like_layout(tensor: torch.Tensor) -> torch.Tensor:
    """An empty float32 tensor of `tensor`'s shape (b, d, l), tokens-last when `tensor` is."""
    batch, dim, length = tensor.shape
    if _tokens_last(tensor):
        return torch.empty(batch, length, dim).transpose(1, 2)
    return torch.empty(batch, dim, length)


def _layouts(*tensors: torch.Tensor | None):
    """The (batch, channel, time) element strides of (b, d, l) tensors (zeros for None), as the kernel's int64 array."""
    strides = [value for tensor in tensors for value in (tensor.stride() if tensor is not None else (0, 0, 0))]
    return (_i64 * len(strides))(*strides)


def _save_inputs(ctx, originals, float32_copies) -> None:
    """Saves the float32 copies (None as an empty tensor) and the original dtypes, for the backward."""
    ctx.save_for_backward(*[t if t is not None else torch.empty(0) for t in float32_copies])
    ctx.present = [t is not None for t in float32_copies]
    ctx.dtypes = [None if t is None else t.dtype for t in originals]


def _saved_inputs(ctx) -> list[torch.Tensor | None]:
    return [t if present else None for t, present in zip(ctx.saved_tensors, ctx.present, strict=True)]


def _gradient_buffers(u, delta, A, B, C, D, z, delta_bias, empty=torch.empty_like) -> list[torch.Tensor | None]:
    """Buffers for the kernels' gradients: the accumulated ones (A, D, delta_bias) zeroed, the others written whole;
    those of u, delta and z made by `empty` from the input."""
    grads = [empty(t) for t in (u, delta)] + [torch.zeros_like(A)]
    grads += [torch.empty_like(t) for t in (B, C)]
    grads += [None if D is None else torch.zeros_like(D), None if z is None else empty(z)]
    return [*grads, None if delta_bias is None else torch.zeros_like(delta_bias)]


def _to_input_dtypes(dtypes, grads) -> list[torch.Tensor | None]:
    """Gradients in the dtypes of the inputs; B and C go back from the kernels' (..., l, n) to (..., n, l)."""
    grads = [*grads[:3], grads[3].transpose(-1, -2), grads[4].transpose(-1, -2), *grads[5:]]
    return [None if g is None else g.to(dtype) for g, dtype in zip(grads, dtypes, strict=True)]


class SelectiveScanCPU(torch.autograd.Function):
    """Autograd wrapper of the fused kernel. Inputs in mamba_ssm's layout; B and C are (b, n, l); initial_state is
    h_{-1} (b, d, n), or None for zeros. u, delta and z are read in the layout they come in (a view of a projection's
    (b, l, d) output included), and the output is laid out tokens-last, (b, l, d) transposed, as the output
    projection reads it."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state=None):
        library = load()
        batch, dim, length = u.shape
        nstate = A.shape[1]
        f32 = _scan_inputs(u, delta, A, B, C, D, z, delta_bias)
        h0 = _f32(initial_state)
        out = torch.empty(batch, length, dim, dtype=torch.float32).transpose(1, 2)
        last_state = torch.empty(batch, dim, nstate, dtype=torch.float32)
        library.selective_scan_fwd(
            *map(_ptr, f32), int(delta_softplus), _ptr(h0), _ptr(out), _ptr(last_state),
            batch, dim, length, nstate, _layouts(f32[0], f32[1], f32[6], out), _threads(),
        )  # fmt: skip
        _save_inputs(ctx, (u, delta, A, B, C, D, z, delta_bias, initial_state), [*f32, h0])
        ctx.delta_softplus = delta_softplus
        out = out.to(u.dtype)
        return (out, last_state) if return_last_state else out

    @staticmethod
    def backward(ctx, dout, dlast_state=None):
        library = load()
        *inputs, h0 = _saved_inputs(ctx)
        batch, dim, length = inputs[0].shape
        nstate = inputs[2].shape[1]
        grads = _gradient_buffers(*inputs, empty=_empty_like_layout)
        dh0 = None if h0 is None else torch.empty_like(h0)
        # Keep the float32 copies referenced: a temporary freed before the call would leave a dangling pointer.
        dout, dlast_state = _f32_any_layout(dout), _f32(dlast_state)
        du, ddelta, dz = grads[0], grads[1], grads[6]
        layouts = _layouts(inputs[0], inputs[1], inputs[6], dout, du, ddelta, dz)
        library.selective_scan_bwd(
            *map(_ptr, inputs), int(ctx.delta_softplus), _ptr(h0), _ptr(dout), _ptr(dlast_state),
            *map(_ptr, grads), _ptr(dh0), batch, dim, length, nstate, layouts, _threads(),
        )  # fmt: skip
        *dtypes, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None else dh0.to(h0_dtype)
        return (*_to_input_dtypes(dtypes, grads), None, None, dh0)


class CoupledScanCPU(torch.autograd.Function):
    """Autograd wrapper of the fused coupled scan. u, delta, z: (M, b, d, l); A: (M, d, n); B, C: (M, b, n, l);
    D, delta_bias: (M, d). `weight` scales the summed state (1: Eq. 6's sum, 1/M: mean); coupled=False: no coupling.
    initial_state: the carried state before the first step, (b, d, n) when coupled, (M, b, d, n) otherwise, or None."""

    @staticmethod
    def forward(
        ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, coupled, weight, initial_state, return_last_state
    ):
        library = load()
        modalities, batch, dim, length = u.shape
        nstate = A.shape[-1]
        f32 = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
        h0 = _f32(initial_state)
        out = torch.empty(modalities, batch, dim, length, dtype=torch.float32)
        last_state = torch.empty(*(() if coupled else (modalities,)), batch, dim, nstate, dtype=torch.float32)
        sizes = (modalities, batch, dim, length, nstate, _threads())
        library.coupled_scan_fwd(
            *map(_ptr, f32), int(delta_softplus), int(coupled), weight, _ptr(h0), _ptr(out), _ptr(last_state), *sizes
        )
        _save_inputs(ctx, (u, delta, A, B, C, D, z, delta_bias, initial_state), [*f32, h0])
        ctx.flags = (int(delta_softplus), int(coupled), weight)
        out = out.to(u.dtype)
        return (out, last_state) if return_last_state else out

    @staticmethod
    def backward(ctx, dout, dlast_state=None):
        library = load()
        *inputs, h0 = _saved_inputs(ctx)
        grads = _gradient_buffers(*inputs)
        dh0 = None if h0 is None else torch.empty_like(h0)
        dout, dlast_state = _f32(dout), _f32(dlast_state)  # referenced until the call returns
        sizes = (*inputs[0].shape, inputs[2].shape[-1], _threads())
        library.coupled_scan_bwd(
            *map(_ptr, inputs), *ctx.flags, _ptr(h0), _ptr(dout), _ptr(dlast_state), *map(_ptr, grads), _ptr(dh0),
            *sizes,
        )  # fmt: skip
        *dtypes, h0_dtype = ctx.dtypes
        dh0 = None if dh0 is None else dh0.to(h0_dtype)
        return (*_to_input_dtypes(dtypes, grads), None, None, None, dh0, None)
