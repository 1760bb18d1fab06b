"""The locks of the tested environments, made from pyproject.toml and checked against it.

    python3 tools/lock.py lock                  # writes requirements/lock.txt and requirements/lock-oldest.txt
    python3 tools/lock.py check                 # fails if a lock no longer matches pyproject.toml (cheap, no network)
    python3 tools/lock.py sync PYTHON LOCKFILE  # makes a venv hold exactly the lock (installs, removes the rest)
    python3 tools/lock.py latest-requirements   # the direct requirements with their upper bounds removed
    python3 tools/lock.py lower-bound NAME      # a direct requirement's lower bound (make test-torch-floor)

The direct requirements are the project's dependencies plus every extra but those in UNLOCKED_EXTRAS (`kernels`: GPU
only), so a new extra is locked and tested without touching this script.
- lock.txt: the newest releases within pyproject.toml's ranges, and everything they pull in.
- lock-oldest.txt: every direct requirement at exactly its lower bound (the `>=` in pyproject.toml, so the two cannot
  drift apart), and the newest releases of everything else that fit; torch, in both, at the build constraints.txt
  pins (PINNED_BY_CONSTRAINTS; its lower bound has `make test-torch-floor`).
Both are pip's own resolution on this interpreter: `pip install --dry-run --ignore-installed --report` in a throwaway
venv, with PIP_CONSTRAINT=constraints.txt (torch==2.13.0 resolves to the local CPU wheel). A local version label
(`2.13.0+cpu`) is written without its label, so the same lock takes the CPU wheel where one is offered to pip.
The project itself is not locked: install it with `pip install --no-deps -e .` after the lock.

Only the standard library is needed; `packaging` and `tomllib` come from pip's vendored copies where missing, so
`check` runs on a fresh machine before anything is installed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from urllib.parse import unquote

try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a bare interpreter: pip ships a copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints.txt"
LOCKS = {"lock": ROOT / "requirements" / "lock.txt", "oldest": ROOT / "requirements" / "lock-oldest.txt"}
# kernels: CUDA builds, installed in a separate step on GPU machines (README, "GPU kernels"); space: gradio, the app's
# UI stack, installed by `make test-browser`; deepspeed: installed by `make test-deepspeed` (pyproject.toml).
UNLOCKED_EXTRAS = ("kernels", "space", "deepspeed")
# Relies on generation and cache internals that change between minors: never let pip pick an untested release.
MUST_BE_CAPPED = ("transformers",)
# Pinned in both locks to the build constraints.txt names (the CPU wheel this machine offers pip), not to the lower
# bound: the older releases are CUDA builds of several GB that CI cannot download on every run. The lower bound in
# pyproject.toml is checked in a side environment instead, by `make test-torch-floor` (README: The torch you have).
PINNED_BY_CONSTRAINTS = ("torch",)
LOCK_PYTHON = (3, 11)  # the interpreter of CI and of the tested machines; the locks hold for it only
# pip, setuptools and wheel belong to the venv itself; `sync` never removes them.
VENV_TOOLS = {"pip", "setuptools", "wheel"}

DESCRIPTIONS = {
    "lock": "the tested environment: the newest releases within pyproject.toml's ranges, fully pinned",
    "oldest": "every direct requirement at exactly its lower bound in pyproject.toml, the rest at the newest that fits",
}


class LockError(Exception):
    pass


def project() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)["project"]


def locked_extras(proj: dict) -> list[str]:
    return sorted(set(proj.get("optional-dependencies", {})) - set(UNLOCKED_EXTRAS))


def direct_requirements() -> dict[str, Requirement]:
    """The project's dependencies and the locked extras' packages, by canonical name (one package named twice: one
    requirement with both specifiers)."""
    proj = project()
    own = canonicalize_name(proj["name"])
    texts = list(proj["dependencies"])
    for extra in locked_extras(proj):
        texts += proj["optional-dependencies"][extra]
    merged: dict[str, Requirement] = {}
    for text in texts:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == own:  # `mamba-multimodal[onnx]`: an extra of ours that is locked anyway
            missing = set(req.extras) - set(locked_extras(proj))
            if missing:
                raise LockError(f"{text!r} pulls in extras that are not locked: {sorted(missing)}")
            continue
        if req.marker is not None:
            raise LockError(f"{text!r}: environment markers are not supported by the locks")
        if name in merged:
            merged[name].specifier &= req.specifier
        else:
            merged[name] = req
    return dict(sorted(merged.items()))


def lower_bound(req: Requirement) -> Version:
    bounds = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    if not bounds:
        raise LockError(f"{req}: a direct requirement needs a lower bound (>=) in pyproject.toml")
    return max(bounds)


def uncapped(req: Requirement) -> str:
    """The requirement with its upper bounds removed (`~=X.Y` becomes `>=X.Y`)."""
    keep = []
    for s in req.specifier:
        if s.operator in ("<", "<="):
            continue
        keep.append(f">={s.version}" if s.operator == "~=" else str(s))
    return req.name + ",".join(sorted(keep))


def pip_inputs(kind: str) -> list[str]:
    reqs = direct_requirements()
    if kind == "lock":
        return [str(r) for r in reqs.values()]
    return [str(r) if name in PINNED_BY_CONSTRAINTS else f"{r.name}=={lower_bound(r)}" for name, r in reqs.items()]


def constraint_lines() -> list[str]:
    return [line.strip() for line in CONSTRAINTS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def constrained_version(name: str) -> Version:
    """The version constraints.txt pins `name` to."""
    for line in constraint_lines():
        req = Requirement(line)
        if canonicalize_name(req.name) == name and len(req.specifier) == 1:
            (pin,) = req.specifier
            if pin.operator == "==":
                return Version(pin.version)
    raise LockError(f"constraints.txt must pin {name} with ==")


def inputs_digest(kind: str) -> str:
    """What a lock was made from: the pip inputs and constraints.txt. `check` compares it with the lock's header."""
    text = "\n".join([kind, *pip_inputs(kind), "--constraints--", *constraint_lines()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(kind: str, workdir: Path) -> tuple[list[dict], str]:
    """pip's resolution of the inputs in an empty venv: the report's `install` list and pip's version line."""
    env_dir = workdir / f"venv-{kind}"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    inputs = workdir / f"{kind}.in"
    inputs.write_text("\n".join(pip_inputs(kind)) + "\n")
    report = workdir / f"{kind}.json"
    env = dict(os.environ, PIP_CONSTRAINT=str(CONSTRAINTS), PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    cmd += ["--report", str(report), "-r", str(inputs)]
    print(f"[lock] resolving {kind}: {' '.join(pip_inputs(kind))}", flush=True)
    subprocess.run(cmd, check=True, env=env)
    pip_version = subprocess.run(
        [str(python), "-m", "pip", "--version"], check=True, capture_output=True, text=True
    ).stdout.split(" from ")[0]
    return json.loads(report.read_text())["install"], pip_version


def write_lock(kind: str, installs: list[dict], pip_version: str) -> None:
    reqs = direct_requirements()
    own = canonicalize_name(project()["name"])
    pins = {}
    for item in installs:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        if name == own:
            continue
        version = Version(meta["version"])
        note = []
        if name in reqs:
            note.append(f"direct: {reqs[name]}")
        if version.local:
            note.append(f"resolved as {version} ({unquote(item['download_info']['url'].rsplit('/', 1)[-1])})")
        pins[name] = f"{name}=={version.public}" + (f"  # {'; '.join(note)}" if note else "")
    missing = sorted(set(reqs) - set(pins))
    if missing:
        raise LockError(f"pip's resolution has no {missing}")
    today = datetime.date.today().isoformat()
    extras = ", ".join(locked_extras(project()))
    header = [
        f"# {LOCKS[kind].relative_to(ROOT)}: {DESCRIPTIONS[kind]}.",
        f"# Extras locked: {extras} (all but {', '.join(UNLOCKED_EXTRAS)}). The project itself is not in it.",
        f"# Made by `make lock` (tools/lock.py) on {today}, Python {platform.python_version()}, {pip_version}:",
        "#   pip install --dry-run --ignore-installed --report in an empty venv, PIP_CONSTRAINT=constraints.txt.",
        "# Install: pip install --no-deps -r THIS_FILE; pip install --no-deps -e .; pip check (what make does).",
        "# Do not edit by hand: change pyproject.toml, then `make lock` (README: Reproducible installs).",
        f"# inputs-digest: {inputs_digest(kind)}",
    ]
    LOCKS[kind].parent.mkdir(exist_ok=True)
    LOCKS[kind].write_text("\n".join(header + [pins[name] for name in sorted(pins)]) + "\n")
    print(f"[lock] wrote {LOCKS[kind].relative_to(ROOT)}: {len(pins)} packages", flush=True)


def read_lock(path: Path) -> tuple[dict[str, Version], str | None]:
    pins, digest = {}, None
    for raw in path.read_text().splitlines():
        if raw.startswith("# inputs-digest:"):
            digest = raw.split(":", 1)[1].strip()
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        if not version:
            raise LockError(f"{path.name}: {raw!r} is not a name==version pin")
        pins[canonicalize_name(name)] = Version(version)
    return pins, digest


def check() -> list[str]:
    """Everything that is wrong with the locks against pyproject.toml (empty: all good)."""
    problems = []
    reqs = direct_requirements()
    for name in MUST_BE_CAPPED:
        if name not in reqs or not any(s.operator in ("<", "<=") for s in reqs[name].specifier):
            problems.append(f"pyproject.toml: {name} needs an upper bound at the newest tested minor")
    for kind, path in LOCKS.items():
        rel = path.relative_to(ROOT)
        if not path.exists():
            problems.append(f"{rel} is missing: run `make lock`")
            continue
        pins, digest = read_lock(path)
        if digest != inputs_digest(kind):
            problems.append(f"{rel} was made from other requirements than pyproject.toml's now: run `make lock`")
        for name, req in reqs.items():
            if name not in pins:
                problems.append(f"{rel}: direct requirement {req} is not pinned")
            elif name in PINNED_BY_CONSTRAINTS:
                if pins[name] != constrained_version(name) or not req.specifier.contains(pins[name]):
                    problems.append(f"{rel}: {name}=={pins[name]} is not constraints.txt's pin within {req}")
            elif kind == "oldest" and pins[name] != lower_bound(req):
                problems.append(f"{rel}: {name}=={pins[name]} is not the lower bound of {req}")
            elif kind == "lock" and not SpecifierSet(str(req.specifier)).contains(pins[name], prereleases=True):
                problems.append(f"{rel}: {name}=={pins[name]} is outside pyproject.toml's {req}")
    return problems


def sync(python: str, lock: Path) -> None:
    """Installs the lock into the venv of `python` without dependencies and removes what the lock does not hold
    (the project and the venv's own tools excepted), so an old venv ends up exactly like a fresh one."""
    pins, _ = read_lock(lock)
    pip = [python, "-m", "pip"]
    # Not quiet: a fresh venv takes minutes (torch alone is ~200 MB), and pip's lines and bars show it progressing.
    print(f"[lock] installing the {len(pins)} packages of {lock.name} into {Path(python).parent.parent}", flush=True)
    subprocess.run([*pip, "install", "--no-deps", "-r", str(lock)], check=True)
    listed = subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True, text=True).stdout
    keep = set(pins) | VENV_TOOLS | {canonicalize_name(project()["name"])}
    extra = sorted(p["name"] for p in json.loads(listed) if canonicalize_name(p["name"]) not in keep)
    if extra:
        print(f"[lock] removing what {lock.name} does not hold: {' '.join(extra)}", flush=True)
        subprocess.run([*pip, "uninstall", "-q", "-y", *extra], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lock", help="write both locks from pyproject.toml (needs the package index)")
    sub.add_parser("check", help="fail if a lock does not match pyproject.toml")
    p_sync = sub.add_parser("sync", help="make a venv hold exactly a lock")
    p_sync.add_argument("python", help="the venv's python")
    p_sync.add_argument("lockfile", type=Path)
    sub.add_parser("latest-requirements", help="print the direct requirements without upper bounds")
    p_bound = sub.add_parser("lower-bound", help="print a direct requirement's lower bound")
    p_bound.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            if sys.version_info[:2] != LOCK_PYTHON:
                raise LockError(f"the locks are for Python {'.'.join(map(str, LOCK_PYTHON))}; this is {sys.version}")
            with tempfile.TemporaryDirectory(prefix="mm-lock-") as tmp:
                for kind in LOCKS:
                    write_lock(kind, *resolve(kind, Path(tmp)))
            problems = check()
        elif args.command == "check":
            problems = check()
            if not problems:
                print("[lock] requirements/lock.txt and lock-oldest.txt match pyproject.toml")
        elif args.command == "sync":
            sync(args.python, args.lockfile)
            problems = []
        elif args.command == "lower-bound":
            print(lower_bound(direct_requirements()[canonicalize_name(args.name)]))
            problems = []
        else:
            print("\n".join(uncapped(r) for r in direct_requirements().values()))
            problems = []
    except LockError as e:
        problems = [str(e)]
    for problem in problems:
        print(f"[lock] {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
