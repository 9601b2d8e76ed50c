"""The import graph of jaxsched/, experiments/ and benchmarks/, read with `ast` (nothing is
imported): no module imports itself in a cycle (function-level imports included), the library
imports neither runners nor benchmarks, and no module imports an experiment runner (a module of
experiments/ run as `python -m experiments.<name>`): runners share code through the library and
experiments/common.py-style shared modules, never through each other."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jaxsched", "experiments", "benchmarks")


def module_files() -> dict[str, Path]:
    """Dotted module name -> its file, for every module of PACKAGES."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` imports anywhere in its file: `import a.b`
    -> a.b; `from a import b` -> a.b when that is a module, else a (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in known else base for t in targets]
        else:
            continue
        for target in targets:
            while target and target not in known:  # import a.b.c of a package a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_runner(path: Path) -> bool:
    """A module with an `if __name__ == "__main__":` block."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            sides = [node.test.left, *node.test.comparators]
            if any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides):
                return True
    return False


def runners() -> set[str]:
    return {
        f"experiments.{path.stem}"
        for path in (ROOT / "experiments").glob("*.py")
        if path.stem != "__init__" and is_runner(path)
    }


def test_the_graph_is_read():
    graph = import_graph()
    assert "jaxsched.data" in graph["experiments.common"]
    assert "experiments.common" in graph["experiments.lr_range_test"]
    assert "jaxsched.models" in graph["experiments.common"]  # from jaxsched.models import LeNet5
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_runners_are_found():
    found = runners()
    assert {"experiments.lr_range_test", "experiments.scaling", "experiments.dead_relu"} <= found
    assert not found & {"experiments.common", "experiments._lr_range", "experiments._batch"}


def test_nothing_imports_a_runner():
    graph = import_graph()
    found = runners()
    offenders = {
        (module, target) for module, targets in graph.items() for target in targets & found
    }
    assert offenders == set()


def test_the_library_imports_neither_experiments_nor_benchmarks():
    graph = import_graph()
    offenders = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("jaxsched")
        for target in targets
        if not target.startswith("jaxsched")
    }
    assert offenders == set()
