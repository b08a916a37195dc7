"""docker-compose.yml and the app cannot drift apart: every setting taskapp/ reads (parsed
from its source by scripts/check_compose.py) reaches every app service, compose passes
nothing the app no longer reads, and only the edge publishes a port. (The full check,
with the Compose Specification schema, is `scripts/check_compose.py`.)"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check_compose():
    spec = importlib.util.spec_from_file_location(
        "check_compose", ROOT / "scripts/check_compose.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_passes_exactly_the_settings_the_app_reads():
    check = _check_compose()
    document = check.load_yaml(ROOT / "docker-compose.yml")
    reads = check.app_settings()
    assert {"DATABASE_URL", "SMTP_URL", "WEBHOOK_ALLOWED_NETWORKS", "LOG_LEVEL"} <= reads
    assert check.drift_errors(document, reads) == []
    assert check.project_errors(document) == []


def test_a_setting_compose_does_not_pass_is_reported(tmp_path):
    check = _check_compose()
    text = (ROOT / "docker-compose.yml").read_text().replace("\n  SMTP_URL:\n", "\n")
    (tmp_path / "compose.yml").write_text(text)
    problems = check.drift_errors(check.load_yaml(tmp_path / "compose.yml"), check.app_settings())
    assert any("SMTP_URL" in problem for problem in problems), problems


def test_the_directives_quoted_in_the_docs_are_the_template_s():
    """docs/production.md quotes the edge's deciding directives; they must be the real
    ones, word for word."""
    docs = (ROOT / "docs" / "production.md").read_text()
    block = docs.split("```nginx\n", 1)[1].split("```", 1)[0]
    template = (ROOT / "deploy" / "nginx" / "templates" / "taskapp.conf.template").read_text()
    lines = [line.strip() for line in template.splitlines()]
    for quoted in block.strip().splitlines():
        assert quoted.strip() in lines, f"not in the template: {quoted}"
