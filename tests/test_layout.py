"""The shape of the code, checked so that it cannot drift: domain modules know nothing of
HTTP, Celery or the CLI; imports point one way; resource packages share one shape."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "taskapp"
RESOURCES = ("auth", "users", "tasks", "logs", "webhooks")
"""Resource packages: routes.py + schemas.py each, queries.py where they filter."""
NOT_DOMAIN = {
    "taskapp",
    "taskapp.extensions",
    "taskapp.jobs",
    "taskapp.cli",
    "taskapp.celery_signals",  # an edge like jobs: what Celery's signals do around each job
}
WEB_AND_TOOLS = (
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
FLASK_NAMES_ALLOWED_IN_DOMAIN = {"current_app"}


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


def is_domain(module: str) -> bool:
    parts = module.split(".")
    top_level = len(parts) == 2 and module not in NOT_DOMAIN and module in MODULES
    return top_level or (len(parts) == 3 and parts[1] in RESOURCES and parts[2] == "service")


def unit(module: str) -> str:
    """The unit a module belongs to: its subpackage, or itself at the top level."""
    parts = module.split(".")
    return ".".join(parts[:2])


def internal_imports(module: str) -> set[str]:
    names = {name for name, _ in imports_of(MODULES[module])}
    return {name for name in names if name in MODULES} - {"taskapp"}


def test_importing_the_models_loads_no_web_celery_or_blueprint():
    code = "import sys, taskapp.models; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in {"flask_smorest", "celery", "celerybeat_schedule", "webargs"}
        or unit(name) == "taskapp.web"
        or name.endswith(".routes")
    ]
    assert heavy == []
    assert {name for name in loaded if name.startswith("taskapp")} <= {
        "taskapp",
        "taskapp.config",
        "taskapp.models",
        "taskapp.origin",  # a context variable (stdlib only): the log entries' request ids
    }


@pytest.mark.parametrize("module", sorted(m for m in MODULES if is_domain(m)))
def test_domain_modules_know_nothing_of_http_celery_or_the_cli(module):
    for imported, names in imports_of(MODULES[module]):
        top = imported.split(".")[0]
        assert top not in WEB_AND_TOOLS, f"{module} imports {imported}"
        if imported == "flask":
            assert set(names) <= FLASK_NAMES_ALLOWED_IN_DOMAIN, f"{module} imports flask.{names}"
        if imported.startswith("taskapp.") and imported in MODULES:
            assert is_domain(imported), f"domain module {module} imports {imported}"


def test_web_plumbing_imports_no_resource_job_or_cli():
    for module in (m for m in MODULES if unit(m) == "taskapp.web"):
        for imported in internal_imports(module):
            assert unit(imported) not in {f"taskapp.{r}" for r in RESOURCES}, (module, imported)
            assert imported not in {"taskapp.jobs", "taskapp.cli"}, (module, imported)


def test_jobs_call_domain_functions_only():
    for imported in internal_imports("taskapp.jobs"):
        assert is_domain(imported) or imported == "taskapp.extensions", imported


def test_extensions_hold_extension_objects_only():
    assert internal_imports("taskapp.extensions") <= {"taskapp.models"}


def test_packages_do_not_import_each_other_in_a_circle():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        if module == "taskapp":
            continue  # the factory imports every part, inside its register_* steps
        edges = {unit(imported) for imported in internal_imports(module)} - {unit(module)}
        graph.setdefault(unit(module), set()).update(edges)
    cycles = _cycles(graph)
    assert cycles == [], f"import cycles between units: {cycles}"


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


@pytest.mark.parametrize("resource", RESOURCES)
def test_resource_packages_have_one_shape(resource):
    files = {path.name for path in (PACKAGE / resource).glob("*.py")}
    assert {"__init__.py", "routes.py", "schemas.py"} <= files
    assert files <= {
        "__init__.py",
        "routes.py",
        "schemas.py",
        "queries.py",
        "service.py",
        "tokens.py",
    }


def test_tests_share_helpers_through_a_module_not_conftest():
    for path in (ROOT / "tests").glob("*.py"):
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
