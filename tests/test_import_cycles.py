"""No import cycles among traitbench's modules, and its packages as layers (`LAYERS`): every `import` / `from …
import` (module-level or inside a function, relative ones resolved) is an edge, and a strongly connected component
of more than one module is a cycle. Modules loaded by name through importlib are not edges.

Function-local imports are only for heavy optional dependencies, and each says why in a comment."""

import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "traitbench"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The traitbench modules that the file of module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return out & modules - {name}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package at `root` -> the modules of that package it imports."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imported_modules(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=sorted)


def test_graph_sees_every_kind_of_import(tmp_path):
    """Absolute, `from package import submodule`, relative and function-local imports all become edges."""
    files = {"__init__.py": "", "a.py": "import traitbench.b\nfrom traitbench import c\n",
             "b.py": "def f():\n    from traitbench.sub.d import x\n", "c.py": "import os\n",
             "sub/__init__.py": "from . import d\n", "sub/d.py": "from ..a import y\nfrom .. import c\n"}
    for name, text in files.items():
        (tmp_path / "traitbench" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "traitbench" / name).write_text(text)
    graph = import_graph(tmp_path / "traitbench")
    assert graph == {"traitbench": set(), "traitbench.a": {"traitbench.b", "traitbench.c"},
                     "traitbench.b": {"traitbench.sub.d"}, "traitbench.c": set(),
                     "traitbench.sub": {"traitbench.sub.d"}, "traitbench.sub.d": {"traitbench.a", "traitbench.c"}}
    assert cycles(graph) == [{"traitbench.a", "traitbench.b", "traitbench.sub.d"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among traitbench modules:\n" + "\n".join(" ↔ ".join(sorted(c)) for c in found)


def uncommented_local_imports(path: Path) -> list[int]:
    """Lines of the function-local imports in `path` without a comment saying why they are local: on the first
    line of the import, or on a comment line just above it. Consecutive imports share the first one's comment."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    comments = {t.start[0] for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        blocks = [b for node in ast.walk(fn) for f in ("body", "orelse", "finalbody")
                  if isinstance(b := getattr(node, f, None), list)]  # statement lists (a lambda's body is not one)
        for block in blocks:
            previous_import = False
            for stmt in block:
                is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
                line = stmt.lineno
                commented = line in comments or (line - 1 in comments and lines[line - 2].lstrip().startswith("#"))
                if is_import and not previous_import and not commented:
                    found.append(line)
                previous_import = is_import
    return sorted(set(found))


def test_comment_check_sees_every_local_import(tmp_path):
    """Inline and line-above comments count, a block shares its first import's comment, a string is no comment,
    module-level imports need none; imports in methods, nested functions and branches are local."""
    path = tmp_path / "m.py"
    path.write_text("import os\n\n\ndef f():\n    import a  # heavy\n\n    import b\n    x = 1\n    import c\n"
                    "    if x:\n        # heavy: only here\n        import d\n    s = '# no comment'\n    import e\n\n\n"
                    "class K:\n    def g(self):\n        def h():\n            import g\n")
    assert uncommented_local_imports(path) == [9, 14, 20]


def test_local_imports_say_why():
    """A function-local import is kept only for a heavy optional dependency, with a comment saying why."""
    found = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p in sorted(PACKAGE.rglob("*.py"))
             for line in uncommented_local_imports(p)]
    assert not found, "function-local imports without a comment saying why:\n" + "\n".join(found)


# Packages as layers, bottom to top: a module imports only its own package and the layers below it. The root
# modules (errors, io, config, layout, artifacts, manifest, cache, stats, threads, plotting, ray_tasks) are the
# base; cli.py is the top.
LAYERS = ("base", "lm", "corpora datasets", "probes", "student", "teacher", "pipeline", "report", "experiments", "cli")


def package_of(module: str) -> str:
    """`traitbench.teacher.injections` → teacher; a root module → base (cli → cli)."""
    parts = module.split(".")
    if len(parts) == 1 or (parts[1] != "cli" and not (PACKAGE / parts[1]).is_dir()):
        return "base"
    return parts[1]


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer.split())


def upward_imports(graph: dict[str, set[str]], package=package_of) -> list[str]:
    """Imports that run from a lower layer to a higher one, or across packages of one layer."""
    return sorted(f"{a} → {b}" for a, targets in graph.items() for b in targets
                  if package(a) != package(b) and layer_of(package(a)) <= layer_of(package(b)))


def test_layer_check_sees_upward_and_sideways_imports():
    pkg = {"x.lm.m": "lm", "x.probes.p": "probes", "x.teacher.t": "teacher", "x.corpora.c": "corpora",
           "x.datasets.d": "datasets", "x.io": "base"}.get
    graph = {"x.lm.m": {"x.io"}, "x.probes.p": {"x.lm.m", "x.teacher.t"}, "x.teacher.t": {"x.probes.p"},
             "x.corpora.c": {"x.datasets.d"}, "x.datasets.d": set(), "x.io": set()}
    assert upward_imports(graph, pkg) == ["x.corpora.c → x.datasets.d", "x.probes.p → x.teacher.t"]


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {"base", "cli"}
    assert packages == {name for layer in LAYERS for name in layer.split()}


def test_packages_are_layers():
    found = upward_imports(import_graph())
    assert not found, "imports from a lower package layer to a higher one:\n" + "\n".join(found)
