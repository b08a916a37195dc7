"""docker-compose.yml and the app cannot drift apart: every setting taskapp/ reads (parsed
from its source by scripts/check_compose.py) reaches every app service, compose passes
nothing the app no longer reads, and only the edge publishes a port. (The full check,
with the Compose Specification schema, is `scripts/check_compose.py`.)"""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")
def test_the_image_renders_the_edge_template_as_reliability_edge_does():
    """The official nginx image substitutes templates with this perl line (its
    20-envsubst-on-templates.sh) and NGINX_ENVSUBST_FILTER from docker-compose.yml; the
    result must be what `python -m reliability.edge` renders for the tests and the
    cluster, so both run the same edge."""
    from reliability.edge import TEMPLATE, render_template

    document = _check_compose().load_yaml(ROOT / "docker-compose.yml")
    env = document["services"]["nginx"]["environment"]
    values = {k: v for k, v in env.items() if k.startswith("EDGE_")}
    script = r"s|\$(\{)?($ENV{NGINX_ENVSUBST_FILTER}\w*)(?(1)\})|$ENV{$2} // $&|ge"
    image = subprocess.run(
        ["perl", "-pe", script],
        input=TEMPLATE.read_text(),
        env={**os.environ, **values, "NGINX_ENVSUBST_FILTER": env["NGINX_ENVSUBST_FILTER"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert image == render_template(values)
    assert "${" not in image
