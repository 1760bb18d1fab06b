"""The compiled CPU kernel as a guest in the user's process: it leaves the floating-point mode alone, builds atomically
into the right cache folder, never hangs on a compiler, and works in forked DataLoader workers."""

import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from mamba_multimodal.modeling import ssm, ssm_cpu


@pytest.fixture
def fresh_load():
    """`ssm_cpu.load()` runs again in the test; afterwards the next caller loads the real kernel again."""
    ssm_cpu.load.cache_clear()
    yield
    ssm_cpu.load.cache_clear()


@pytest.fixture
def no_cache_env(monkeypatch):
    for name in ("MAMBA_MULTIMODAL_CACHE", "XDG_CACHE_HOME", "MAMBA_MULTIMODAL_COMPILE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def small_scan_inputs(length=8):
    g = torch.Generator().manual_seed(0)
    return {
        "u": torch.randn(2, 16, length, generator=g),
        "delta": torch.randn(2, 16, length, generator=g),
        "A": -torch.rand(16, 4, generator=g) - 0.1,
        "B": torch.randn(2, 4, length, generator=g),
        "C": torch.randn(2, 4, length, generator=g),
        "D": torch.randn(16, generator=g),
        "z": torch.randn(2, 16, length, generator=g),
    }


# --------------------------------------------------------------------------------------------- floating point
def test_the_kernel_leaves_the_process_floating_point_mode_alone():
    """GCC links crtfastmath.o (flush-to-zero, denormals-are-zero for the whole process) into a shared object linked
    with -ffast-math. Checked in a fresh process: this one may have loaded the kernel long ago."""
    script = textwrap.dedent("""
        import numpy as np, torch
        from mamba_multimodal.modeling import ssm, ssm_cpu
        torch.set_num_threads(2)
        assert ssm_cpu.load() is not None
        u = torch.randn(2, 8, 16, requires_grad=True)
        ssm.selective_scan(u, u.abs(), -torch.ones(8, 4), torch.randn(2, 4, 16), torch.randn(2, 4, 16),
                           backend="cpu").sum().backward()
        assert (torch.tensor([1e-39]) * 1).item() != 0, "torch flushes denormals to zero"
        assert (torch.full((1 << 16,), 1e-39) * 1).ne(0).all(), "torch's worker threads flush denormals to zero"
        assert np.float32(1e-38) / 100 != 0, "numpy flushes denormals to zero"
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# -------------------------------------------------------------------------------------------- cache folder
def test_the_cache_folder_follows_the_override_then_xdg_then_home(tmp_path, monkeypatch, no_cache_env):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert next(ssm_cpu._cache_roots()) == tmp_path / "home" / ".cache" / "mamba_multimodal"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says to ignore a relative path
    assert next(ssm_cpu._cache_roots()) == tmp_path / "home" / ".cache" / "mamba_multimodal"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert next(ssm_cpu._cache_roots()) == tmp_path / "xdg" / "mamba_multimodal"
    monkeypatch.setenv("MAMBA_MULTIMODAL_CACHE", str(tmp_path / "override"))
    assert next(ssm_cpu._cache_roots()) == tmp_path / "override"
    target = ssm_cpu._library_path(ssm_cpu._compiler())
    assert target.parent.parent.parent == tmp_path / "override" and target.name == "libssm_cpu.so"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile.gettempdir() answers a fresh folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_without_a_home_the_kernel_builds_in_a_private_temp_folder(monkeypatch, no_cache_env, private_tmp, fresh_load):
    monkeypatch.delenv("HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")  # what Path.home() raises without a passwd entry

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    target = ssm_cpu._library_path(ssm_cpu._compiler())
    root = private_tmp / f"mamba_multimodal-{os.getuid()}"
    assert target.is_relative_to(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert ssm_cpu.load() is not None and target.exists()


def test_an_unwritable_home_falls_back_to_the_temp_folder(monkeypatch, no_cache_env, private_tmp):
    monkeypatch.setenv("HOME", "/dev/null")  # not a folder: unwritable even for root
    assert ssm_cpu._library_path(ssm_cpu._compiler()).is_relative_to(private_tmp)


def test_a_temp_folder_others_can_write_is_not_used(no_cache_env, private_tmp):
    shared = private_tmp / f"mamba_multimodal-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # another user could plant a library there
    root = ssm_cpu._private_temp_root()
    assert root != shared and stat.S_IMODE(root.stat().st_mode) == 0o700


def cpuinfo(*cores: dict[str, str]) -> str:
    return "\n\n".join("\n".join(f"{key}\t: {value}" for key, value in core.items()) for core in cores)


NEOVERSE_N1 = {
    "processor": "0",
    "BogoMIPS": "50.00",
    "Features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
    "CPU implementer": "0x41",
    "CPU architecture": "8",
    "CPU variant": "0x3",
    "CPU part": "0xd0c",
    "CPU revision": "1",
}
SKYLAKE = {"processor": "0", "vendor_id": "GenuineIntel", "cpu family": "6", "model": "85", "cpu MHz": "2000.0",
           "model name": "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz", "flags": "fpu sse2 avx2 avx512f"}  # fmt: skip


def test_the_cache_key_tells_cpus_apart_on_arm_and_x86():
    signature = ssm_cpu._cpu_signature
    cortex_a72 = {**NEOVERSE_N1, "CPU variant": "0x0", "CPU part": "0xd08", "Features": "fp asimd crc32 cpuid"}
    assert signature(cpuinfo(NEOVERSE_N1)) != signature(cpuinfo(cortex_a72))
    assert signature(cpuinfo(NEOVERSE_N1)) != signature(cpuinfo({**NEOVERSE_N1, "Features": "fp asimd"}))
    big_little = cpuinfo(NEOVERSE_N1, {**cortex_a72, "processor": "1"})
    assert signature(big_little) not in (signature(cpuinfo(NEOVERSE_N1)), signature(cpuinfo(cortex_a72)))
    assert signature(cpuinfo(SKYLAKE)) != signature(cpuinfo({**SKYLAKE, "flags": "fpu sse2 avx2"}))
    # Same CPU, other core count or clock: one key.
    assert signature(cpuinfo(NEOVERSE_N1)) == signature(
        cpuinfo(NEOVERSE_N1, {**NEOVERSE_N1, "processor": "1", "BogoMIPS": "48.00"})
    )
    assert signature(cpuinfo(SKYLAKE)) == signature(cpuinfo({**SKYLAKE, "cpu MHz": "3100.2"}))


def test_only_a_cpu_that_splits_512_bit_operations_builds_its_float32_decode_with_8_lanes():
    """AMD's family 25 with AVX-512 (Zen 4) gets -DMAMBA_SPLIT_AVX512; Zen 3 (no AVX-512), Zen 5 (family 26) and
    Intel's AVX-512 do not."""
    zen4 = {"processor": "0", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "model name": "AMD EPYC",
            "flags": "fpu avx2 fma avx512f avx512bw avx512_bf16"}  # fmt: skip
    others = [{**zen4, "flags": "fpu avx2 fma"}, {**zen4, "cpu family": "26"}, SKYLAKE, NEOVERSE_N1]
    assert ssm_cpu._compile_flags(cpuinfo(zen4)) == [*ssm_cpu._COMPILE_FLAGS, "-DMAMBA_SPLIT_AVX512"]
    assert all(ssm_cpu._compile_flags(cpuinfo(other)) == ssm_cpu._COMPILE_FLAGS for other in others)


# ------------------------------------------------------------------------------------- a hung or broken compiler
def fake_compiler(tmp_path, body: str) -> str:
    """An executable Python script standing in for the C++ compiler."""
    path = tmp_path / "fake-c++"
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{textwrap.dedent(body)}")
    path.chmod(0o755)
    return str(path)


def process_is_gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether the process ends within `within_s` (SIGKILL is delivered asynchronously: a loaded machine may show
    the process for a moment after the kill)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in "ZX":  # a zombie is gone too
                return True
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("hangs_on", ["--version", "compile"])
def test_a_hung_compiler_is_killed_and_the_scan_falls_back_to_pytorch(
    hangs_on, tmp_path, monkeypatch, caplog, fresh_load
):
    compiler = fake_compiler(
        tmp_path,
        f"""
        if "--version" in sys.argv and {hangs_on!r} != "--version":
            print("fake 1.0")
            sys.exit(0)
        child = os.fork()  # a child of the driver, as cc1plus is
        if child == 0:
            time.sleep(120)
            open({str(tmp_path / "child.finished")!r}, "w").close()  # only if it was left to run
            sys.exit(0)
        open({str(tmp_path / "child.pid")!r}, "w").write(str(child))
        time.sleep(120)
        """,
    )
    monkeypatch.setenv("CXX", compiler)
    monkeypatch.setenv("MAMBA_MULTIMODAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MAMBA_MULTIMODAL_COMPILE_TIMEOUT", "1")
    with caplog.at_level("WARNING", logger="mamba_multimodal"):
        assert ssm_cpu.load() is None
    assert "ran past 1 s and was killed" in caplog.text
    assert process_is_gone(int((tmp_path / "child.pid").read_text())), "the compiler's children must be killed too"
    assert not (tmp_path / "child.finished").exists(), "killed, not waited for"
    assert not list((tmp_path / "cache").rglob("*.so")), "no library may appear"
    inputs = small_scan_inputs()
    assert ssm.resolve_backend(inputs["u"]) == "pytorch"
    with pytest.raises(ValueError, match=r"backend='cpu' cannot run selective_scan: .* ran past 1 s"):
        ssm.selective_scan(**inputs, backend="cpu")


# ---------------------------------------------------------------------------------------------- atomic build
FAKE_BUILD = """
    if "--version" in sys.argv:
        print("fake 1.0")
        sys.exit(0)
    out = sys.argv[sys.argv.index("-o") + 1]
    mode = os.environ["FAKE_CXX_MODE"] if "-shared" in sys.argv else "ok"  # the step that writes the library
    with open(out, "wb") as file:
        file.write(b"first half|")
        file.flush()
        if mode == "fail":
            sys.exit(1)
        if mode == "hang":
            time.sleep(120)
        if mode == "pause":
            open(os.environ["FAKE_CXX_HALFWAY"], "w").close()
            while not os.path.exists(os.environ["FAKE_CXX_GO"]):
                time.sleep(0.01)
        file.write(b"second half")
"""


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_failed_or_killed_build_leaves_nothing_at_the_target(mode, tmp_path, monkeypatch):
    compiler = fake_compiler(tmp_path, FAKE_BUILD)
    monkeypatch.setenv("FAKE_CXX_MODE", mode)
    monkeypatch.setenv("MAMBA_MULTIMODAL_COMPILE_TIMEOUT", "1")
    target = tmp_path / "cache" / "kernels" / "key" / "libssm_cpu.so"
    with pytest.raises((subprocess.CalledProcessError, subprocess.TimeoutExpired)):
        ssm_cpu._build(compiler, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == [], "no partial file may be left behind"


def test_a_concurrent_reader_never_sees_a_partial_library(tmp_path, monkeypatch):
    compiler = fake_compiler(tmp_path, FAKE_BUILD)
    halfway, go = tmp_path / "halfway", tmp_path / "go"
    monkeypatch.setenv("FAKE_CXX_MODE", "pause")
    monkeypatch.setenv("FAKE_CXX_HALFWAY", str(halfway))
    monkeypatch.setenv("FAKE_CXX_GO", str(go))
    target = tmp_path / "cache" / "kernels" / "key" / "libssm_cpu.so"
    build = threading.Thread(target=ssm_cpu._build, args=(compiler, target))
    build.start()
    try:
        deadline = time.monotonic() + 30
        while not halfway.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert halfway.exists(), "the fake compiler did not start"
        assert not target.exists(), "the library is visible while it is being written"
    finally:
        go.touch()
        build.join(timeout=30)
    assert target.read_bytes() == b"first half|second half"
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no partial file may be left behind"


def test_the_kernel_builds_into_a_fresh_cache(tmp_path, monkeypatch, fresh_load):
    monkeypatch.setenv("MAMBA_MULTIMODAL_CACHE", str(tmp_path))
    target = ssm_cpu._library_path(ssm_cpu._compiler())
    assert target.is_relative_to(tmp_path) and not target.exists()
    assert ssm_cpu.load() is not None
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no partial file may be left behind"
    inputs = small_scan_inputs()
    torch.testing.assert_close(
        ssm.selective_scan(**inputs, backend="cpu"), ssm.selective_scan_ref(**inputs), atol=1e-4, rtol=1e-4
    )


# ------------------------------------------------------------------------------------------ fork, DataLoader
class ScanDataset(torch.utils.data.Dataset):
    """Item i: the CPU kernel's output and input gradient for u scaled by i + 1. Nothing but the kernel runs in
    parallel: after fork, torch's own parallel ops hang with more than one thread (see the test below)."""

    def __init__(self, inputs):
        self.inputs = inputs

    def __len__(self):
        return 4

    def __getitem__(self, index):
        u = (self.inputs["u"] * (index + 1)).requires_grad_()
        out = ssm.selective_scan(**{**self.inputs, "u": u}, delta_softplus=True, backend="cpu")
        (grad,) = torch.autograd.grad(out.sum(), u)
        return out.detach(), grad


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("worker_threads", [None, 2])
def test_dataloader_workers_run_the_kernel_after_the_parent_did(worker_threads):
    """libgomp's thread pool does not survive fork: a parallel region in a forked worker waits forever for the
    parent's threads. DataLoader gives each worker one torch thread (None); a worker that asks for more (2) must not
    hang in the kernel either (torch's own parallel ops do hang there, which is torch's business)."""
    dataset = ScanDataset(small_scan_inputs(length=64))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        in_parent = [dataset[i] for i in range(len(dataset))]  # the parent's OpenMP pool now exists
    finally:
        torch.set_num_threads(threads)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
        timeout=30,  # a hung worker fails the test instead of hanging it
        worker_init_fn=None if worker_threads is None else lambda _: torch.set_num_threads(worker_threads),
    )
    for (out, grad), (out_parent, grad_parent) in zip(loader, in_parent, strict=True):
        torch.testing.assert_close(out, out_parent, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(grad, grad_parent, atol=1e-6, rtol=1e-6)
