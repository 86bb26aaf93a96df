"""The shipped packages import one way, down the layers, and no module imports itself back.

The walk reads the source (ast), so imports inside functions count, and so do
`import_string("...")`, `import_module("...")` and `include("...")` calls with a literal
project path, and reads of `SV_` settings whose value names a project module: a dotted path
in a setting is an import too.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lower rank is lower; a module may import its own package and lower ranks only.
# Packages of equal rank may not import each other.
LAYERS = {
    "sv_sdk": 0,
    "audit_app": 1,
    "auth_app": 2,
    "permissions_app": 3,
    "email_app": 3,
    "platform_app": 4,
}
# Test and tooling code, which no shipped module may import.
NOT_SHIPPED = {"tests", "conftest", "reliability", "benchmarks"}
SETTINGS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "sv_sdk/settings").glob("*.py"))
SKIPPED_DIRS = {"tests", "migrations"}
# Calls that import the module their literal argument names (include: a URLconf).
IMPORTERS = {"import_string", "import_module", "include"}


@dataclass(frozen=True, order=True)
class Edge:
    source: str
    target: str
    line: int


def module_files(root: Path, packages) -> dict[str, Path]:
    """Dotted name -> file for every shipped module (tests and migrations left out)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if SKIPPED_DIRS & set(parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def settings_values(root: Path, files) -> dict[str, list[str]]:
    """Every string a settings module assigns to an upper-case name, by name."""
    values: dict[str, list[str]] = {}
    for name in files:
        path = root / name
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id.isupper():
                        values.setdefault(target.id, []).extend(_strings(node.value))
    return values


class Graph:
    """Imports between the modules of `packages` under `root`."""

    def __init__(self, root: Path, packages, settings_files=()):
        self.root = root
        self.files = module_files(root, packages)
        self.settings = settings_values(root, settings_files)
        self.trees = {
            name: ast.parse(path.read_text(), str(path)) for name, path in self.files.items()
        }
        self.reexports = {
            name: self._reexported_names(name)
            for name, path in self.files.items()
            if path.name == "__init__.py" and self._only_reexports(self.trees[name])
        }
        self.edges = sorted({edge for name in self.files for edge in self._edges_of(name)})

    # Resolving a dotted path to the modules a file depends on.

    def _module_of(self, dotted: str) -> str | None:
        """The longest prefix of `dotted` that is a module of the walk, if any."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.files:
                return candidate
        return None

    def _targets(self, dotted: str, name: str | None = None) -> set[str]:
        """Modules that `from dotted import name` (or `import dotted`) loads and uses.

        A package whose `__init__` only re-exports stands for the modules it re-exports
        from: for one name, the module that defines it; for the package itself, all of them.
        """
        if name is not None and f"{dotted}.{name}" in self.files:
            dotted = f"{dotted}.{name}"
            name = None
        module = self._module_of(dotted)
        if module is None:
            top = dotted.split(".")[0]
            return {top} if top in NOT_SHIPPED else set()
        if module in self.reexports:
            sources = self.reexports[module]
            if name is not None and name in sources:
                return {sources[name]}
            return set(sources.values())
        return {module}

    @staticmethod
    def _only_reexports(tree: ast.Module) -> bool:
        for node in tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.ImportFrom):
                continue
            if isinstance(node, ast.Assign) and [
                t.id for t in node.targets if isinstance(t, ast.Name)
            ] == ["__all__"]:
                continue
            return False
        return any(isinstance(node, ast.ImportFrom) for node in tree.body)

    def _reexported_names(self, package: str) -> dict[str, str]:
        names = {}
        for node in self.trees[package].body:
            if isinstance(node, ast.ImportFrom):
                base = self._absolute(package, node, is_package=True)
                for alias in node.names:
                    source = self._module_of(f"{base}.{alias.name}") or self._module_of(base)
                    if source is not None:
                        names[alias.asname or alias.name] = source
        return names

    def _absolute(self, module: str, node: ast.ImportFrom, *, is_package: bool) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, node.module] if node.module else parts)

    # The edges of one file.

    def _edges_of(self, module: str):
        tree = self.trees[module]
        is_package = self.files[module].name == "__init__.py"
        for node in ast.walk(tree):
            found: set[str] = set()
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found |= self._targets(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node, is_package=is_package)
                for alias in node.names:
                    found |= self._targets(base, alias.name)
            elif isinstance(node, ast.Call) and self._called_name(node) in IMPORTERS and node.args:
                for path in self._path_arguments(node.args[0]):
                    found |= self._targets(path)
            elif (setting := self._setting_name(node)) and setting.startswith("SV_"):
                for value in self.settings.get(setting, []):
                    found |= self._targets(value)
            for target in found:
                if target != module and not (
                    module in self.reexports and target.startswith(f"{module}.")
                ):
                    yield Edge(module, target, getattr(node, "lineno", 0))

    @staticmethod
    def _called_name(call: ast.Call) -> str | None:
        if isinstance(call.func, ast.Name):
            return call.func.id
        if isinstance(call.func, ast.Attribute):
            return call.func.attr
        return None

    @staticmethod
    def _setting_name(node: ast.AST) -> str | None:
        """NAME, for `settings.NAME` and `getattr(settings, "NAME", ...)`."""
        if isinstance(node, ast.Attribute):
            owner, name = node.value, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            owner, name = node.args[0], node.args[1].value
        else:
            return None
        return name if isinstance(owner, ast.Name) and owner.id == "settings" else None

    def _path_arguments(self, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if setting := self._setting_name(node):
            return self.settings.get(setting, [])
        return []

    # What the test asserts.

    def upward_imports(self, layers) -> list[str]:
        """Imports from a lower layer to a higher one, across equal layers, or of test code."""
        wrong = []
        for edge in self.edges:
            source, target = edge.source.split(".")[0], edge.target.split(".")[0]
            if target in NOT_SHIPPED:
                wrong.append(
                    f"{edge.source}:{edge.line} imports test or tooling code {edge.target}"
                )
            elif source != target and layers[source] == layers[target]:
                wrong.append(
                    f"{edge.source}:{edge.line} imports {edge.target}, a package of its own layer"
                )
            elif source != target and layers[source] < layers[target]:
                wrong.append(f"{edge.source}:{edge.line} imports {edge.target}, a higher layer")
        return wrong

    def settings_naming_tooling(self) -> list[str]:
        """Settings of the shipped packages that point at test or tooling modules."""
        return sorted(
            f"{name} names {value}"
            for name, values in self.settings.items()
            for value in values
            if value.split(".")[0] in NOT_SHIPPED
        )

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of more than one module (Tarjan's algorithm)."""
        graph: dict[str, set[str]] = {name: set() for name in self.files}
        for edge in self.edges:
            if edge.target in graph:
                graph[edge.source].add(edge.target)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for nxt in sorted(graph[node]):
                if nxt not in index:
                    visit(nxt)
                    low[node] = min(low[node], low[nxt])
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

        for node in sorted(graph):
            if node not in index:
                visit(node)
        return sorted(groups)


@pytest.fixture(scope="module")
def project():
    return Graph(ROOT, LAYERS, SETTINGS)


def test_no_shipped_module_imports_a_higher_layer_or_test_code(project):
    assert project.edges, "the walk found no imports at all"
    assert project.upward_imports(LAYERS) == []


def test_no_import_cycle_between_shipped_modules(project):
    assert project.cycles() == []


def test_no_shipped_setting_names_test_or_tooling_code(project):
    assert project.settings_naming_tooling() == []


# The checker, on small trees made for it.


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


FAKE_LAYERS = {"base": 0, "low": 1, "left": 2, "right": 2, "top": 3}


def fake_tree(tmp_path: Path, files: dict[str, str] | None = None) -> Graph:
    tree = {
        "base/__init__.py": "",
        "base/settings.py": "",
        "low/__init__.py": "",
        "low/models.py": "import base\n",
        "left/__init__.py": "",
        "right/__init__.py": "",
        "top/__init__.py": "",
        "top/flows.py": "from low import models\n",
    }
    tree.update(files or {})
    write_tree(tmp_path, tree)
    return Graph(tmp_path, FAKE_LAYERS, ["base/settings.py"])


def test_the_checker_passes_a_tree_that_imports_downwards(tmp_path):
    graph = fake_tree(tmp_path)
    assert [(e.source, e.target) for e in graph.edges] == [
        ("low.models", "base"),
        ("top.flows", "low.models"),
    ]
    assert graph.upward_imports(FAKE_LAYERS) == []
    assert graph.cycles() == []


@pytest.mark.parametrize(
    "source",
    [
        "from top.flows import onboard\n",
        "import top.flows\n",
        "from top import flows\n",
        "def late():\n    from top.flows import onboard\n    return onboard\n",
        "from django.utils.module_loading import import_string\n"
        "ONBOARD = import_string('top.flows.onboard')\n",
        "import importlib\nflows = importlib.import_module('top.flows')\n",
        "from django.urls import include, path\nurlpatterns = [path('', include('top.flows'))]\n",
        "from django.conf import settings\n"
        "from django.utils.module_loading import import_string\n"
        "def onboard():\n    return import_string(settings.SV_ONBOARD)()\n",
        "from django.conf import settings\n"
        "def onboard(hook=getattr(settings, 'SV_ONBOARD', None)):\n    return hook\n",
    ],
    ids=[
        "from",
        "import",
        "from-package",
        "in-function",
        "import_string",
        "import_module",
        "include",
        "setting",
        "setting-getattr",
    ],
)
def test_the_checker_fails_on_a_planted_upward_import(tmp_path, source):
    settings = "SV_ONBOARD = 'top.flows.onboard'\n"
    graph = fake_tree(tmp_path, {"base/settings.py": settings, "low/services.py": source})

    (problem,) = graph.upward_imports(FAKE_LAYERS)
    assert problem.startswith("low.services:") and "imports top.flows, a higher layer" in problem


def test_the_checker_fails_on_packages_of_one_layer_importing_each_other(tmp_path):
    graph = fake_tree(tmp_path, {"left/mail.py": "from right import roles\n", "right/roles.py": ""})

    assert graph.upward_imports(FAKE_LAYERS) == [
        "left.mail:1 imports right.roles, a package of its own layer"
    ]


def test_the_checker_fails_on_a_shipped_module_importing_test_code(tmp_path):
    graph = fake_tree(tmp_path, {"low/mail.py": "from reliability.mail import SmtpServer\n"})

    assert graph.upward_imports(FAKE_LAYERS) == [
        "low.mail:1 imports test or tooling code reliability"
    ]


def test_the_checker_fails_on_a_shipped_setting_naming_tooling_code(tmp_path):
    settings = "ROOT_URLCONF = 'benchmarks.urls'\nDEBUG = True\nLANGUAGE_CODE = 'en'\n"
    graph = fake_tree(tmp_path, {"base/settings.py": settings})

    assert graph.settings_naming_tooling() == ["ROOT_URLCONF names benchmarks.urls"]


def test_the_checker_leaves_out_tests_and_migrations(tmp_path):
    graph = fake_tree(
        tmp_path,
        {
            "low/tests/test_models.py": "from top.flows import onboard\n",
            "low/migrations/0001_initial.py": "import top.flows\n",
        },
    )
    assert graph.upward_imports(FAKE_LAYERS) == []


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    graph = fake_tree(
        tmp_path,
        {
            "low/services.py": "from low.tasks import deliver\n",
            "low/tasks.py": "def deliver():\n    from low import services\n",
        },
    )
    assert graph.cycles() == [["low.services", "low.tasks"]]


def test_a_reexporting_package_stands_for_the_modules_it_reexports(tmp_path):
    graph = fake_tree(
        tmp_path,
        {
            "low/mail/__init__.py": '"""Mail."""\nfrom .outbox import queue\n'
            "from .delivery import deliver\n__all__ = ['queue', 'deliver']\n",
            "low/mail/outbox.py": "def queue(): ...\n",
            # Delivery uses the outbox through the package: no cycle through __init__.
            "low/mail/delivery.py": "from low.mail import queue\n",
            "low/tasks.py": "from low.mail import deliver\n",
        },
    )
    edges = {(e.source, e.target) for e in graph.edges}
    assert ("low.mail.delivery", "low.mail.outbox") in edges
    assert ("low.tasks", "low.mail.delivery") in edges
    assert graph.cycles() == []

    write_tree(tmp_path, {"low/mail/outbox.py": "from low.tasks import later\n"})
    graph = Graph(tmp_path, FAKE_LAYERS)
    assert graph.cycles() == [["low.mail.delivery", "low.mail.outbox", "low.tasks"]]
