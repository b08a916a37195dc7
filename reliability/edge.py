"""Run taskapp's edge (deploy/nginx) outside Docker, in the foreground, with Debian's nginx:

    python -m reliability.edge --listen 127.0.0.1:8080 --upstream 127.0.0.1:8000 \
        [--upstream HOST:PORT ...] [--stream-upstream HOST:PORT ...]

It renders ``deploy/nginx/templates/taskapp.conf.template`` the way the official image's
entrypoint does (only the ``EDGE_*`` variables are replaced, nginx's own ``$variables``
stay), writes a main file beside it that differs from ``deploy/nginx/nginx.conf`` only in
where things live (a temp dir for the pid and the temp files, the current user), and runs
``nginx -g 'daemon off;'``. SIGTERM or SIGINT stops nginx gracefully (SIGQUIT: open
requests finish) and removes the temp dir. Without ``--stream-upstream`` the event stream
goes to the API upstreams. The tests and ``reliability.cluster`` use :func:`render`.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "taskapp.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_EDGE_VARIABLE = re.compile(r"\$\{(EDGE_[A-Z_]+)\}")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")

MAIN = """\
# Written by reliability.edge: deploy/nginx/nginx.conf with paths of its own.
worker_processes {workers};
error_log stderr warn;
pid {dir}/nginx.pid;
events {{
    worker_connections 4096;
}}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/taskapp.conf;
}}
"""


def servers(addresses: list[str]) -> str:
    for address in addresses:
        if not _ADDRESS.match(address):
            raise ValueError(f"not HOST:PORT: {address!r}")
    return " ".join(f"server {address};" for address in addresses)


def render_template(values: dict[str, str]) -> str:
    """The template with ``${EDGE_*}`` replaced, as envsubst does with a filter."""

    def replace(match: re.Match) -> str:
        return values[match[1]]

    return _EDGE_VARIABLE.sub(replace, TEMPLATE.read_text())


def render(
    directory: Path,
    listen: str,
    upstreams: list[str],
    stream_upstreams: list[str] | None = None,
    workers: int = 1,
) -> Path:
    """Write taskapp.conf and nginx.conf into ``directory``; the main file's path."""
    if not _ADDRESS.match(listen):
        raise ValueError(f"--listen wants HOST:PORT, got {listen!r}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "taskapp.conf").write_text(
        render_template(
            {
                "EDGE_LISTEN": listen,
                "EDGE_API_SERVERS": servers(upstreams),
                "EDGE_STREAM_SERVERS": servers(stream_upstreams or upstreams),
            }
        )
    )
    main = directory / "nginx.conf"
    main.write_text(MAIN.format(dir=directory, workers=workers))
    return main


def command(main: Path) -> list[str]:
    """nginx in the foreground. As root, workers run as root too (the temp dir is
    root's); that is for tests and the cluster only, never in the image."""
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    return [NGINX, "-p", str(main.parent), "-c", str(main), "-g", directives, "-e", "stderr"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability.edge", description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    parser.add_argument("--upstream", action="append", required=True, help="app HOST:PORT")
    parser.add_argument(
        "--stream-upstream", action="append", help="event-stream HOST:PORT (default: --upstream)"
    )
    parser.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="taskapp-edge-"))
    try:
        conf = render(directory, args.listen, args.upstream, args.stream_upstream, args.workers)
        check = subprocess.run([*command(conf), "-t", "-q"], capture_output=True, text=True)
        if check.returncode:
            print(check.stderr, file=sys.stderr)
            return 1
        nginx = subprocess.Popen(command(conf))

        def stop(_signum, _frame):
            nginx.send_signal(signal.SIGQUIT)  # graceful: open requests finish

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            return nginx.wait()
        finally:
            if nginx.poll() is None:
                nginx.kill()
                nginx.wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
