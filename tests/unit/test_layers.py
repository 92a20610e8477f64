"""The server's layers, checked on its import graph (read from the source, nothing imported).

resources/ (HTTP) → services/ (use cases, no falcon) → store/ (the only code that knows pymongo
and the collections) and realtime/ (hub, watcher). The README's Architecture section draws it.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server" / "nexysync_server"
MCP = ROOT / "mcp_server" / "nexysync_mcp"


@dataclass(frozen=True)
class Module:
    """A module of a package: its dotted name, its file and its parsed source."""

    name: str
    path: Path
    tree: ast.Module

    def imports(self) -> Iterator[tuple[str, int]]:
        """Yield every module this one imports (absolute dotted names), with the line of the import."""
        package = self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, node.lineno
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                yield target, node.lineno
                for alias in node.names:
                    yield f"{target}.{alias.name}", node.lineno


def modules(root: Path) -> list[Module]:
    """Return every module of the package at ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(Module(".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))))
    return found


SERVER_MODULES = modules(SERVER)


def _in(module: Module, *packages: str) -> bool:
    return any(module.name == p or module.name.startswith(p + ".") for p in packages)


def _importing(layer: tuple[str, ...], forbidden: tuple[str, ...], *, outside: bool = False) -> list[str]:
    """Return ``file:line imports X`` for each import of a ``forbidden`` module by a module in ``layer``.

    With ``outside``, by a module outside ``layer`` instead.
    """
    return [
        f"{module.path.relative_to(ROOT)}:{line} imports {target}"
        for module in SERVER_MODULES
        if _in(module, *layer) != outside
        for target, line in module.imports()
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    ]


def test_the_layer_test_sees_the_whole_server() -> None:
    names = {module.name for module in SERVER_MODULES}
    assert {"nexysync_server.app", "nexysync_server.store.events", "nexysync_server.services.messaging"} <= names
    # And it reads imports: the app imports falcon, the store pymongo.
    app = next(module for module in SERVER_MODULES if module.name == "nexysync_server.app")
    assert any(target == "falcon" for target, _ in app.imports())


def test_only_the_store_imports_pymongo() -> None:
    assert _importing(("nexysync_server.store",), ("pymongo", "bson"), outside=True) == []


def test_services_never_import_falcon_nor_the_http_layer() -> None:
    http = ("falcon", "nexysync_server.resources", "nexysync_server.errors", "nexysync_server.params")
    assert _importing(("nexysync_server.services",), http) == []


def test_the_store_imports_no_layer_above_it() -> None:
    above = (
        "falcon",
        "nexysync_server.services",
        "nexysync_server.resources",
        "nexysync_server.realtime",
        "nexysync_server.cdn",
        "nexysync_server.errors",
        "nexysync_server.views",
        "nexysync_server.app",
    )
    assert _importing(("nexysync_server.store",), above) == []


def test_resources_take_nothing_from_the_store_but_types_and_names() -> None:
    # A resource calls a service; from the store it may name document types and the file states.
    # (``from ..store.files import READY`` yields the module and the name.)
    exact = {"nexysync_server.store.files", "nexysync_server.store.files.READY"}
    found = [
        f"{module.path.relative_to(ROOT)}:{line} imports {target}"
        for module in SERVER_MODULES
        if _in(module, "nexysync_server.resources")
        for target, line in module.imports()
        if target.startswith("nexysync_server.store")
        and target not in exact
        and not target.startswith("nexysync_server.store.documents")
    ]
    assert found == []
    resources = [module for module in SERVER_MODULES if _in(module, "nexysync_server.resources")]
    assert any("nexysync_server.store.documents" in {t for t, _ in m.imports()} for m in resources)


def _collection_attributes() -> set[str]:
    """Return the attribute names under which the store keeps collections and databases (``self.col = db[...]``)."""
    names = {"db", "client"}
    for module in SERVER_MODULES:
        if not _in(module, "nexysync_server.store"):
            continue
        for node in ast.walk(module.tree):
            # ``self.col = db[...]`` and its annotated form ``self.col: AsyncCollection[Doc] = db[...]``.
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            if not (isinstance(node.value, ast.Subscript) and isinstance(node.value.value, ast.Name)):
                continue
            if node.value.value.id != "db":
                continue
            names.update(
                target.attr
                for target in targets
                if isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            )
    return names


def test_resources_and_the_cdn_app_never_touch_a_collection() -> None:
    collections = _collection_attributes()
    assert {"col", "counters", "leases", "states"} <= collections
    touched = [
        f"{module.path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}"
        for module in SERVER_MODULES
        if _in(module, "nexysync_server.resources", "nexysync_server.cdn", "nexysync_server.services")
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Attribute) and node.attr in collections
    ]
    assert touched == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _graph(found: list[Module]) -> dict[str, set[str]]:
    names = {module.name for module in found}
    graph: dict[str, set[str]] = {module.name: set() for module in found}
    for module in found:
        for target, _ in module.imports():
            while target and target not in names:
                target = target.rpartition(".")[0]
            if target and target != module.name:
                graph[module.name].add(target)
    return graph


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_mcp_server_imports_nothing_of_the_cli() -> None:
    crossing = [
        f"{module.path.relative_to(ROOT)}:{line} imports {target}"
        for module in modules(MCP)
        for target, line in module.imports()
        if target == "nexysync_cli" or target.startswith("nexysync_cli.")
    ]
    assert crossing == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The bridge is a library of the CLI and the MCP server: it imports neither.
        ("mcp_server/nexysync_a2a", ("nexysync_cli", "nexysync_mcp", "nexysync_server")),
        # The API server never depends on the A2A SDK (A2A content is plaintext; the bridge runs where the key is).
        ("server/nexysync_server", ("a2a", "nexysync_a2a")),
        # The CLI and the MCP server take the A2A SDK only through the bridge's package, and only lazily.
        ("mcp_server/nexysync_cli", ("a2a",)),
    ],
)
def test_the_bridge_stays_between_the_cli_and_mcp_server_and_off_the_api_server(
    package: str, forbidden: tuple[str, ...]
) -> None:
    crossing = [
        f"{module.path.relative_to(ROOT)}:{line} imports {target}"
        for module in modules(ROOT / package)
        for target, line in module.imports()
        if any(target == name or target.startswith(name + ".") for name in forbidden)
        and not (package.endswith("nexysync_cli") and module.name.endswith("commands.a2a"))
    ]
    assert crossing == []


def test_the_hooks_load_no_more_than_the_key_file_and_framing_modules_of_the_sdk() -> None:
    # Hooks run on every prompt: the SDK's clients, crypto or models would cost each run their
    # start-up. The key file and framing modules use only the standard library.
    (hooks,) = (module for module in modules(ROOT / "mcp_server" / "nexysync_cli") if module.name.endswith(".hooks"))
    top_level = {
        target
        for node in hooks.tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target, _ in Module(hooks.name, hooks.path, ast.Module(body=[node], type_ignores=[])).imports()
    }
    assert {target for target in top_level if target.startswith("nexysync")} <= {
        "nexysync.keyfile",
        *(f"nexysync.keyfile.{name}" for name in ("KeyFileError", "find_key_file", "read_key_file")),
        "nexysync.framing",
        *(f"nexysync.framing.{name}" for name in ("QUOTE", "one_line", "quoted", "utf8_len", "word")),
    }


def test_the_framing_module_imports_only_the_standard_library() -> None:
    (framing,) = (module for module in modules(ROOT / "sdk" / "nexysync") if module.name.endswith(".framing"))
    assert [target for target, _ in framing.imports() if target.split(".")[0] not in {"__future__", "re"}] == []


@pytest.mark.parametrize(
    "package",
    ["server/nexysync_server", "mcp_server/nexysync_mcp", "mcp_server/nexysync_cli", "mcp_server/nexysync_a2a"],
)
def test_the_import_graph_has_no_cycles(package: str) -> None:
    assert _cycles(_graph(modules(ROOT / package))) == []


def _at_run_time(module: Module) -> Module:
    """Return the module without its ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""

    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt] | None:
            if ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                return node.orelse or None
            return self.generic_visit(node)

    tree = Strip().visit(copy.deepcopy(module.tree))  # the transformer changes the tree it is given
    return Module(module.name, module.path, tree)


SDK_MODULES = modules(ROOT / "sdk" / "nexysync")


def test_the_sdk_imports_no_cycle_at_run_time() -> None:
    # A client names its resources and a resource its client, in annotations only (as in
    # openai-python): those imports sit under TYPE_CHECKING and are left out here.
    assert _cycles(_graph([_at_run_time(module) for module in SDK_MODULES])) == []


def test_the_run_time_graph_keeps_imports_outside_type_checking() -> None:
    (client,) = (module for module in SDK_MODULES if module.name == "nexysync._client")
    targets = {target for target, _ in _at_run_time(client).imports()}
    assert "nexysync._generated._clients" in targets and "nexysync.resources.messages" in targets


def test_the_sdks_generated_layer_imports_nothing_hand_written_above_it() -> None:
    # Composite methods (nexysync/resources/) extend the generated resources; the client attaches
    # them. The generated layer builds on the SDK's runtime (_resource, _pagination, ...) only.
    crossing = [
        f"{module.path.relative_to(ROOT)}:{line} imports {target}"
        for module in SDK_MODULES
        if module.name.startswith("nexysync._generated")
        for target, line in module.imports()
        if target == "nexysync.resources" or target.startswith("nexysync.resources.")
    ]
    assert crossing == []


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _breaches_of_the_public_api(module: Module) -> list[str]:
    """Return each private module or name of mcp it imports, each private attribute of an object
    not its own (``self``/``cls``) it reads or writes, and each dunder it writes (a forged ``__signature__``)."""
    where = module.path.relative_to(ROOT)
    found = []
    for target, line in module.imports():
        if target.split(".")[0] in ("mcp", "mcp_types") and any(_private(part) for part in target.split(".")):
            found.append(f"{where}:{line} imports {target}")
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute):
            continue
        own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        if _private(node.attr) and not own:
            found.append(f"{where}:{node.lineno} uses {ast.unparse(node)}")
        if node.attr.startswith("__") and isinstance(node.ctx, ast.Store):
            found.append(f"{where}:{node.lineno} writes {ast.unparse(node)}")
    return found


def test_the_mcp_server_uses_only_the_public_api_of_the_mcp_sdk() -> None:
    assert [breach for module in modules(MCP) for breach in _breaches_of_the_public_api(module)] == []


def test_the_public_api_rule_sees_a_private_use() -> None:
    source = "\n".join(
        [
            "import mcp.server._otel",
            "server._lowlevel_server.run()",
            "run.__signature__ = 1",
            "self._x = type(x).__name__",
        ]
    )
    module = Module("nexysync_mcp.x", MCP / "x.py", ast.parse(source))
    assert sorted(_breaches_of_the_public_api(module)) == [
        "mcp_server/nexysync_mcp/x.py:1 imports mcp.server._otel",
        "mcp_server/nexysync_mcp/x.py:2 uses server._lowlevel_server",
        "mcp_server/nexysync_mcp/x.py:3 writes run.__signature__",
    ]
