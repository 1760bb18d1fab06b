"""What every benchmark here shares: memory readings, timing, the machine description and atomic JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

THREADS = 2
# The flags that decide which matmul and scan paths are fast (an AVX2-only EPYC runs a bf16 matmul at 0.3 GFLOP/s).
SIMD_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c", "sse4")


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's RSS high-water mark. Not getrusage's ru_maxrss: Linux carries that across exec, so a worker
    would report its parent's peak."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# Run a memory worker with this environment: glibc then serves every allocation of 64 KiB or more with its own mmap
# and unmaps it at free (no dynamic threshold, no freed arena kept), so the RSS follows the live tensors and a second
# call cannot hide its peak in memory the first call left behind.
MEMORY_WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def reset_peak_rss() -> None:
    """Sets this process's RSS high-water mark (VmHWM) back to its current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def steady_call_memory_mb(function) -> float:
    """What one call of `function()` adds to the RSS at its peak, after a first call has done the one-time work
    (thread pools, kernel builds, allocator set-up). Meant for a process started with MEMORY_WORKER_ENV."""
    function()
    reset_peak_rss()
    before = current_rss_mb()
    function()
    return peak_rss_mb() - before


def time_calls(function, repeats: int, warmup: int = 1) -> list[float]:
    """Wall time of each of `repeats` calls of `function()` after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def machine() -> dict:
    import torch
    import transformers

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return {
        "cpu": cpu,
        "cpu_flags": sorted(flag for flag in flags if flag.startswith(SIMD_FLAG_PREFIXES)),
        "cores": os.cpu_count(),
        "threads": THREADS,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_json(report: dict, output: str | Path) -> Path:
    """Writes `report` so that a crash never leaves a half-written result."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2))
    os.replace(partial, output)
    return output
