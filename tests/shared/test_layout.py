"""The shape of the code, checked so that it cannot drift: domain modules know nothing of
HTTP, Celery or the CLI; imports point one way; resource packages share one shape."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from taskapp.features import features

PACKAGE = ROOT / "taskapp"
FEATURES = features()
"""The factory's own list (the same object): every feature package, checked below."""
FEATURE_UNITS = {feature.package for feature in FEATURES}
WEB_SIDE = {"routes", "schemas", "tokens"}
"""A feature's web side: its views, its schemas, and (auth) the flask-jwt-extended
callbacks that answer 401. Everything else in a feature is its domain."""
ADAPTERS = {"jobs": {"celery", "kombu"}, "cli": {"click"}}
"""Thin adapters a feature may have: what each may import beyond the domain's rules."""
SHARED_DOMAIN = {
    "taskapp.models",
    "taskapp.audit",
    "taskapp.visibility",
    "taskapp.errors",
    "taskapp.idempotency",
    "taskapp.ordering",
    "taskapp.settings",
    "taskapp.config",
    "taskapp.features",
    "taskapp.origin",
    "taskapp.metrics",
}
"""Top-level modules every feature may build on; they know nothing of HTTP either."""
WEB_AND_TOOLS = (
    "flask",
    "flask_smorest",
    "webargs",
    "marshmallow",
    "werkzeug",
    "celery",
    "kombu",
    "click",
    "flask_jwt_extended",
    "flask_limiter",
    "flask_sqlalchemy",
)


ALLOWED_TARGETS = {
    "domain": {"domain", "taskapp.extensions"},
    "jobs": {"domain", "taskapp.extensions", "taskapp.jobs"},
    "cli": {"domain", "taskapp.extensions", "taskapp.cli", "cli", "jobs", "web"},
}
"""What each role may import from taskapp (a role, or a module by name)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            found.append((node.module, names))
            found += [(f"{node.module}.{name}", []) for name in names]
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
MODELS = {f"{feature.package}.models" for feature in FEATURES if feature.models}
"""Each feature's tables, the bottom layer under the shared domain (``taskapp.models``
holds ``Base``)."""


def unit(module: str) -> str:
    """The unit a module belongs to: its subpackage, or itself at the top level."""
    parts = module.split(".")
    return ".".join(parts[:2])


def role(module: str) -> str:
    """``web``, ``jobs``, ``cli``, ``domain`` (a feature's other modules and the shared
    domain modules), or ``plumbing`` (the factory, extensions, web/, Celery wiring)."""
    parts = module.split(".")
    if unit(module) in FEATURE_UNITS and len(parts) == 3:
        name = parts[2]
        if name in WEB_SIDE:
            return "web"
        return name if name in ADAPTERS else "domain"
    if unit(module) in FEATURE_UNITS or module in SHARED_DOMAIN:
        return "domain"
    return "plumbing"


def internal_imports(module: str) -> set[str]:
    names = {name for name, _ in imports_of(MODULES[module])}
    return {name for name in names if name in MODULES} - {"taskapp"}


def test_the_factory_and_this_test_walk_the_same_list():
    assert FEATURES is features()
    assert [f.name for f in FEATURES] == [p.name for p in _feature_folders()]


def _feature_folders() -> list[Path]:
    found = [p.parent for p in PACKAGE.glob("*/__init__.py") if p.parent.name != "web"]
    order = [f.name for f in FEATURES]
    return sorted(found, key=lambda p: order.index(p.name) if p.name in order else 99)


def test_importing_the_models_loads_no_web_celery_or_blueprint():
    code = (
        "import sys; from taskapp.features import import_models; import_models(); "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in {"flask_smorest", "celery", "webargs"}
        or unit(name) == "taskapp.web"
        or name.endswith(".routes")
    ]
    assert heavy == []
    assert {name for name in loaded if name.startswith("taskapp")} <= {
        "taskapp",
        "taskapp.config",
        "taskapp.features",
        "taskapp.models",
        "taskapp.origin",  # a context variable (stdlib only): the log entries' request ids
        *FEATURE_UNITS,
        *MODELS,
    }


def test_models_are_the_bottom_layer():
    """A feature's models import only models (the shared ``Base``, another feature's
    tables to relate to) and the stdlib-only context of :mod:`taskapp.origin`."""
    for module in MODELS:
        for imported in internal_imports(module):
            assert imported in MODELS | {"taskapp.models", "taskapp.origin"}, (module, imported)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if role(m) in {"domain", *ADAPTERS}))
def test_domain_knows_nothing_of_http_and_adapters_only_their_tool(module):
    """Domain modules import no web, Celery or CLI library (not even ``current_app``:
    settings are passed in); a feature's jobs.py may use Celery and its cli.py click,
    each over the domain (cli.py may load input with the API's schemas)."""
    allowed = ADAPTERS.get(role(module), set())
    if role(module) == "jobs":
        allowed = allowed | {"flask"}  # the app context the tasks run in
    if role(module) == "cli":
        allowed = allowed | {"flask", "marshmallow"}
    targets = ALLOWED_TARGETS[role(module)]
    for imported, _names in imports_of(MODULES[module]):
        top = imported.split(".")[0]
        assert top not in WEB_AND_TOOLS or top in allowed, f"{module} imports {imported}"
        if imported in MODULES and imported.startswith("taskapp."):
            ok = role(imported) in targets or imported in targets
            assert ok, f"{module} ({role(module)}) imports {imported} ({role(imported)})"


def test_web_plumbing_imports_no_feature_job_or_cli():
    for module in (m for m in MODULES if unit(m) == "taskapp.web"):
        for imported in internal_imports(module):
            assert unit(imported) not in FEATURE_UNITS, (module, imported)
            assert imported not in {"taskapp.jobs", "taskapp.cli"}, (module, imported)


def test_celery_wiring_walks_the_features_only():
    assert internal_imports("taskapp.jobs") <= {"taskapp.extensions", "taskapp.features"}


def test_extensions_hold_extension_objects_only():
    assert internal_imports("taskapp.extensions") <= {"taskapp.models", "taskapp.db"}


def test_packages_do_not_import_each_other_in_a_circle():
    """A feature's models.py counts as a unit of its own: the shared domain
    (``audit.py``, ``visibility.py``) reads several features' tables, and the features
    build on it; the tables import no other module of their feature (see above)."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        if module in {"taskapp", "taskapp.features", "taskapp.cli", "taskapp.jobs"}:
            continue  # the factory and the walkers import every feature, lazily
        edges = {_layer(imported) for imported in internal_imports(module)} - {_layer(module)}
        graph.setdefault(_layer(module), set()).update(edges)
    cycles = _cycles(graph)
    assert cycles == [], f"import cycles between units: {cycles}"


def _layer(module: str) -> str:
    return module if module in MODELS else unit(module)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_feature_packages_have_one_shape(feature):
    """routes.py + schemas.py each; models.py, cli.py and jobs.py exactly when the feature
    says it adds tables, commands or periodic tasks."""
    files = {path.stem for path in (PACKAGE / feature.name).glob("*.py")}
    assert {"__init__", "routes", "schemas"} <= files
    assert ("models" in files) == feature.models
    assert ("cli" in files) == feature.cli
    assert ("jobs" in files) == feature.jobs


def test_top_level_keeps_only_shared_modules():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == {
        "__init__",
        "audit",
        "cli",
        "config",
        "db",
        "errors",
        "extensions",
        "features",
        "idempotency",
        "jobs",
        "models",
        "ordering",
        "visibility",
        # observability, shared by the web side, the jobs and the models (issue 21)
        "origin",
        "log_format",
        "metrics",
        "celery_signals",
    }


def test_tests_share_helpers_through_a_module_not_conftest():
    for path in (ROOT / "tests").rglob("*.py"):
        for imported, _names in imports_of(path):
            assert imported.split(".")[0] != "conftest", f"{path.name} imports conftest"


@pytest.mark.parametrize("folder", ["bench", "reliability"])
def test_tool_folders_have_no_long_functions(folder):
    long = []
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == []


def test_no_test_is_a_scenario_over_50_lines():
    long = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_test = isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            if is_test and node.end_lineno - node.lineno + 1 > 50:
                long.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert long == []


def test_no_writes_to_another_librarys_private_names():
    """flask-jwt-extended is read through its public API, in web/permissions.py only."""
    for path in PACKAGE.rglob("*.py"):
        assert "._jwt_extended" not in path.read_text(encoding="utf-8"), path.name


def test_session_listeners_are_installed_from_one_named_place():
    """``event.listen`` on the Session only where a feature says it has listeners (and
    the audit trail's), and those installers are called by the factory alone."""
    declared = {f"taskapp.{f.name}.{f.listeners}" for f in FEATURES if f.listeners}
    # An installer may call a domain module of its own feature that does the listening.
    declared |= {m for d in declared for m in internal_imports(d) if unit(m) == unit(d)}
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if "event.listen(Session" in text:
            assert module in declared | {"taskapp.audit"}, module
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                installs = node.func.attr in {"install_listeners", "init_audit"}
                assert not installs or module == "taskapp", module
