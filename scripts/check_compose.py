"""Check docker-compose.yml without a Docker engine.

1. Validate the file against the official Compose Specification JSON schema, as written
   and again after variable interpolation with sample values (Compose validates the
   interpolated model).
2. Check that interpolation refuses to go on when JWT_SECRET_KEY (or POSTGRES_PASSWORD,
   APP_DB_PASSWORD, TRUSTED_HOSTS) is unset, as `docker compose` does for `${VAR:?message}`.
3. Check the project's own rules: no obsolete `version:` key, no `container_name` (so every
   service scales), every `depends_on` target exists, every app service gets the shared
   environment, only migrate connects as the schema owner, one beat only, a healthcheck on
   every long-running service, nginx (deploy/nginx) the only service publishing a port,
   bound to TASKAPP_BIND_ADDRESS.
4. Check that the settings the app reads and the settings compose passes cannot drift:
   the names are parsed from taskapp/config.py (every ``os.environ.get("X")``,
   ``os.environ["X"]`` and ``_env_*("X", ...)``) and from click's ``envvar="X"`` in
   taskapp/, never listed by hand; every one must be in each app service's environment,
   and compose must pass nothing the app no longer reads.

It needs `jsonschema`, a YAML parser and the schema, none of which are runtime
dependencies. The schema is the copy vendored by check-jsonschema, so use a throwaway venv:

    python3 -m venv /tmp/cj && /tmp/cj/bin/pip install check-jsonschema
    /tmp/cj/bin/python scripts/check_compose.py [docker-compose.yml] [--schema compose-spec.json]

Exit status 0 when every check passes, 1 when one fails, 2 when a dependency is missing.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from importlib import resources
from pathlib import Path

APP_SERVICES = ("migrate", "web", "stream", "worker", "beat")
LONG_RUNNING = ("nginx", "postgres", "redis", "web", "stream", "worker", "beat")
ROOT = Path(__file__).resolve().parent.parent
NOT_FROM_COMPOSE = {
    "TASKAPP_APP_DB_PASSWORD": "migrate only (`db grant-app-role`), set on that service",
}
"""Settings the app reads that compose deliberately passes to some services only."""
REQUIRED_VARS = (
    "JWT_SECRET_KEY",
    "WEBHOOK_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "APP_DB_PASSWORD",
    "TRUSTED_HOSTS",
    "METRICS_TOKEN",
)
SAMPLE_ENV = {
    "JWT_SECRET_KEY": "x" * 64,
    "WEBHOOK_SECRET_KEY": "q5vYyH8Jm0dQ3aWnZp2xT7rLc4eBfK9sU1gVhN6iO0A=",
    "POSTGRES_PASSWORD": "sample-password",
    "APP_DB_PASSWORD": "sample-app-password",
    "METRICS_TOKEN": "sample-metrics-token",
    "TRUSTED_HOSTS": "tasks.example.com",
}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt},
# ${VAR+alt}, $VAR, and $$ for a literal dollar sign (the Compose interpolation rules).
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(Exception):
    pass


def interpolate_string(value: str, env: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        nonempty = bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env[name] if nonempty else arg
        if op == "-":
            return env[name] if present else arg
        if op == ":?":
            if not nonempty:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return env[name]
        if op == "?":
            if not present:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return env[name]
        if op == ":+":
            return arg if nonempty else ""
        return arg if present else ""  # "+"

    return _INTERPOLATION.sub(replace, value)


def interpolate(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate_string(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def load_yaml(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        from ruamel.yaml import YAML
    except ImportError:
        try:
            import yaml
        except ImportError:
            print("needs ruamel.yaml or PyYAML (check-jsonschema brings one)", file=sys.stderr)
            sys.exit(2)
        return yaml.safe_load(text)
    return _plain(YAML(typ="safe", pure=True).load(text))


def _plain(node):
    """ruamel's safe loader already gives dicts and lists; make sure nothing else leaks."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def load_schema(schema_path: str | None) -> tuple[dict, str]:
    if schema_path:
        return json.loads(Path(schema_path).read_text(encoding="utf-8")), schema_path
    try:
        vendored = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    except ModuleNotFoundError:
        print(
            "no schema: pass --schema PATH, or run with a Python that has check-jsonschema",
            file=sys.stderr,
        )
        sys.exit(2)
    schema_file = vendored / "compose-spec.json"
    return json.loads(schema_file.read_text(encoding="utf-8")), str(schema_file)


def schema_errors(document, schema: dict) -> list[str]:
    try:
        from jsonschema.validators import validator_for
    except ImportError:
        print("needs jsonschema (pip install check-jsonschema brings it)", file=sys.stderr)
        sys.exit(2)
    cls = validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [f"{e.json_path}: {e.message}" for e in errors]


def _setting_name(call: ast.Call) -> str | None:
    """The variable name when ``call`` reads the environment, else None."""
    func = call.func
    reads = (
        isinstance(func, ast.Attribute)
        and func.attr == "get"
        and ast.unparse(func.value) == "os.environ"
    ) or (isinstance(func, ast.Name) and func.id.startswith("_env"))
    if reads and call.args and isinstance(call.args[0], ast.Constant):
        return call.args[0].value
    for keyword in call.keywords:
        if keyword.arg == "envvar" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def app_settings(root: Path = ROOT) -> set[str]:
    """Every environment variable the app reads, parsed from its source."""
    names: set[str] = set()
    for path in sorted((root / "taskapp").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (name := _setting_name(node)):
                names.add(name)
            elif (
                isinstance(node, ast.Subscript)
                and ast.unparse(node.value) == "os.environ"
                and isinstance(node.slice, ast.Constant)
            ):
                names.add(node.slice.value)
    return names


def drift_errors(doc: dict, reads: set[str]) -> list[str]:
    problems: list[str] = []
    services = doc.get("services") or {}
    for name in APP_SERVICES:
        env = (services.get(name) or {}).get("environment") or {}
        if not isinstance(env, dict):
            continue
        expected = reads - set(NOT_FROM_COMPOSE)
        missing = sorted(expected - set(env))
        if missing:
            problems.append(f"{name}: the app reads these, compose never passes them: {missing}")
    shared = set((services.get("web") or {}).get("environment") or {}) - {"WEB_CONCURRENCY"}
    stale = sorted(shared - reads)
    if stale:
        problems.append(f"compose passes settings the app no longer reads: {stale}")
    if not reads:
        problems.append("found no settings in taskapp/ (is the parser still right?)")
    return problems


def project_errors(doc: dict) -> list[str]:
    problems: list[str] = []
    services = doc.get("services") or {}
    if "version" in doc:
        problems.append("top-level `version:` is obsolete in the Compose Specification")
    for name in (*APP_SERVICES, "nginx", "postgres", "redis"):
        if name not in services:
            problems.append(f"service {name} is missing")
    for name, service in services.items():
        if "container_name" in service:
            problems.append(f"{name}: container_name prevents --scale")
        for target in service.get("depends_on") or {}:
            if target not in services:
                problems.append(f"{name}: depends_on unknown service {target}")
    for name in APP_SERVICES:
        env = (services.get(name) or {}).get("environment") or {}
        if not isinstance(env, dict):
            problems.append(f"{name}: environment should be the shared x-env mapping")
            continue
        if env.get("TASKAPP_ENV") != "production":
            problems.append(f"{name}: TASKAPP_ENV is not production")
        for secret in ("JWT_SECRET_KEY", "WEBHOOK_SECRET_KEY"):
            if "${" + secret + ":?" not in str(env.get(secret, "")):
                problems.append(f"{name}: {secret} must be ${{{secret}:?...}}")
        for variable in ("DATABASE_URL", "REDIS_URL", "TRUSTED_HOSTS"):
            if not env.get(variable):
                problems.append(f"{name}: {variable} is not set")
        owner = name == "migrate"
        if ("postgresql+psycopg://taskapp:" in str(env.get("DATABASE_URL", ""))) != owner:
            problems.append(
                f"{name}: only migrate connects as the owner (taskapp); the rest as taskapp_app"
            )
    for name in LONG_RUNNING:
        check = (services.get(name) or {}).get("healthcheck") or {}
        if not check.get("test") or check.get("disable"):
            problems.append(f"{name}: no healthcheck")
    beat = services.get("beat") or {}
    if (beat.get("deploy") or {}).get("replicas", 1) != 1 or beat.get("scale", 1) != 1:
        problems.append("beat: must run exactly one replica")
    published = [name for name, service in services.items() if service.get("ports")]
    if published != ["nginx"]:
        problems.append(f"only nginx should publish a port; these do: {published}")
    nginx = services.get("nginx") or {}
    for port in nginx.get("ports") or []:
        if not str(port).startswith("${TASKAPP_BIND_ADDRESS:-127.0.0.1}:"):
            problems.append(f"nginx: port {port} is not bound to TASKAPP_BIND_ADDRESS")
    mounts = " ".join(str(v) for v in nginx.get("volumes") or [])
    if "./deploy/nginx/templates:" not in mounts or "./deploy/nginx/nginx.conf:" not in mounts:
        problems.append("nginx: must mount deploy/nginx (nginx.conf and templates/)")
    if (doc.get("x-env") or {}).get("TRUSTED_PROXY_COUNT") != "${TRUSTED_PROXY_COUNT:-1}":
        problems.append("x-env: TRUSTED_PROXY_COUNT must default to 1 (the nginx hop)")
    migrate_dep = ((services.get("web") or {}).get("depends_on") or {}).get("migrate") or {}
    if migrate_dep.get("condition") != "service_completed_successfully":
        problems.append("web: must wait for migrate to complete successfully")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compose_file", nargs="?", default="docker-compose.yml")
    parser.add_argument("--schema", help="compose-spec.json (default: check-jsonschema's copy)")
    args = parser.parse_args(argv)

    path = Path(args.compose_file)
    document = load_yaml(path)
    schema, schema_source = load_schema(args.schema)
    print(f"schema: {schema.get('title', '?')} from {schema_source}")
    failures = 0

    def report(label: str, problems: list[str]) -> None:
        nonlocal failures
        if problems:
            failures += 1
            print(f"FAIL {label}")
            for problem in problems:
                print(f"     {problem}")
        else:
            print(f"ok   {label}")

    report(f"{path} as written is valid against the schema", schema_errors(document, schema))

    try:
        interpolated = interpolate(copy.deepcopy(document), SAMPLE_ENV)
    except InterpolationError as exc:
        report("interpolation with sample values", [str(exc)])
    else:
        report(
            f"{path} interpolated ({', '.join(sorted(SAMPLE_ENV))} set) is valid",
            schema_errors(interpolated, schema),
        )

    for variable in REQUIRED_VARS:
        for env in (
            {k: v for k, v in SAMPLE_ENV.items() if k != variable},
            {**SAMPLE_ENV, variable: ""},
        ):
            state = "empty" if variable in env else "unset"
            try:
                interpolate(copy.deepcopy(document), env)
            except InterpolationError as exc:
                report(f"refuses to interpolate with {variable} {state} ({exc})", [])
            else:
                report(f"refuses to interpolate with {variable} {state}", ["it did not refuse"])

    report(
        "project rules (no version, no container_name, env, healthchecks, one beat, edge)",
        project_errors(document),
    )
    reads = app_settings()
    report(
        f"the {len(reads)} settings taskapp/ reads and those compose passes match",
        drift_errors(document, reads),
    )

    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
