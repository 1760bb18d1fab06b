"""Runs for the tests that launch training over 2 CPU processes (torchrun, `accelerate launch`): a free port for the
rendezvous, and the run's output, launched once more when a process aborted in gloo's teardown after the run had
finished its work.

The abort: "terminate called without an active exception" (exit code -6) from a process leaving while gloo still
held work (pytorch/pytorch#190489). The training scripts and `mamba-multimodal train` end the process group before
they exit, which makes it rare; CI still saw it once in a while (torch 2.13, FSDP and DDP launches alike). It is
retried only when the run printed that it was done, so any other failure fails at once.
"""

import os
import socket
import subprocess
from pathlib import Path

TEARDOWN_ABORT = "terminate called without an active exception"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launched(command: list[str], hf_home: Path, *, finished: str, succeeds: bool = True, timeout: int = 300,
             tries: int = 2) -> subprocess.CompletedProcess:  # fmt: skip
    """The finished run of `command` (1 OpenMP thread a process, `hf_home` as HF_HOME so that no user accelerate
    config applies); `finished`: what its stdout holds once the work is done. Asserts that it exits with 0, or with
    another code when `succeeds` is False."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(hf_home)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    aborted_after_its_work = finished in result.stdout and TEARDOWN_ABORT in result.stderr
    if succeeds and result.returncode != 0 and aborted_after_its_work and tries > 1:
        return launched(command, hf_home, finished=finished, timeout=timeout, tries=tries - 1)
    assert (result.returncode == 0) == succeeds, result.stdout[-3000:] + result.stderr[-3000:]
    return result
