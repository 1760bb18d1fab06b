"""The package's import graph, read from the source with `ast`: no cycle, and no import from a lower layer into a
higher one. Every `import` / `from ... import` counts, at module level and inside functions, relative and absolute,
and so does `importlib.import_module("literal")` (a lookup by name is an import too).

Layers, low to high (a module may import its own layer and the ones below):
    _version, file_utils, registry, hub_mixin (the models' sharing hook), configuration.*
    modeling.*, processing.*
    sharing.*, hub, the package's __init__ (which registers the sharing hook)
    export
    training.*
    training.cli, training.demo, the launcher mamba_multimodal_cli (programs: the demo runs the CLI's own `train`
    command, the one it prints for the user to rerun)
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "mamba_multimodal"
LAUNCHER = "mamba_multimodal_cli"
LAYERS = [
    ("_version", "file_utils", "registry", "hub_mixin", "configuration"),
    ("modeling", "processing"),
    ("sharing", "hub", ""),  # "": the package's own __init__
    ("export",),
    ("training",),
    ("training.cli", "training.demo", LAUNCHER),
]


def module_names() -> dict[str, Path]:
    """{dotted module name: file} of the package and the launcher (a package by its __init__'s name)."""
    modules = {LAUNCHER: SRC / f"{LAUNCHER}.py"}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(module: str, path: Path, modules) -> set[str]:
    """The modules of `modules` that `module` (its file at `path`) imports: `from X import a` names X.a when that
    is a module (`from . import ssm_cpu`), else X."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(package + ([node.module] if node.module else []))
            names |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names & set(modules)


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports}."""
    modules = module_names()
    return {module: imported_modules(module, path, modules) - {module} for module, path in modules.items()}


def layer_of(module: str) -> int:
    name = module.removeprefix(PACKAGE).removeprefix(".") if module != LAUNCHER else LAUNCHER
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if name == prefix or (prefix and name.startswith(f"{prefix}."))
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


GRAPH = import_graph()


def test_the_package_has_no_import_cycle():
    assert cycles(GRAPH) == []


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_registry_imports_no_module_of_the_package():
    assert GRAPH[f"{PACKAGE}.registry"] == set()
    # And run alone, outside the package: it defines every family and imported nothing of the package.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('registry_alone', {str(SRC / PACKAGE / 'registry.py')!r})\n"
        "registry = sys.modules['registry_alone'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(registry)\n"
        "assert registry.FAMILIES and not [m for m in sys.modules if m.startswith('mamba_multimodal')], sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_graph_sees_relative_absolute_function_level_and_importlib_imports(tmp_path):
    """The reader itself, on the shapes of import the package uses (checked against edges written by hand)."""
    source = (
        "import importlib\nfrom . import ssm_cpu\nfrom ..configuration.validation import is_positive_int\n"
        "def f():\n    from .mamba import MambaModel\n    import mamba_multimodal.registry\n"
        "    return importlib.import_module('mamba_multimodal.hub')\n"
    )
    path = tmp_path / "x.py"
    path.write_text(source)
    expected = {
        f"{PACKAGE}.modeling.ssm_cpu",
        f"{PACKAGE}.configuration.validation",
        f"{PACKAGE}.modeling.mamba",
        f"{PACKAGE}.registry",
        f"{PACKAGE}.hub",
    }
    known = {*expected, PACKAGE, f"{PACKAGE}.modeling"}
    assert imported_modules(f"{PACKAGE}.modeling.x", path, known) == expected


@pytest.mark.parametrize(
    ("module", "layer"),
    [("mamba_multimodal", 2), ("mamba_multimodal.training.cli", 5), ("mamba_multimodal.training.data.mmsa", 4)],
)
def test_layer_of_takes_the_longest_prefix(module, layer):
    assert layer_of(module) == layer
