"""The framework's ceiling: a bare Flask app with no database and no auth.

It answers ``GET /api/tasks/`` with a pre-built JSON page, the very bytes the real app
answered for the INTERN list in the same run (``BENCH_BARE_PAGE`` names the file), so
both move the same payload through the same gunicorn configuration. Only the work of
taskapp itself (auth, query parsing, SQL, serialisation) is missing.

    gunicorn bench.bare_app:app
"""

import os
from pathlib import Path

from flask import Flask, Response

app = Flask(__name__)
PAGE = Path(os.environ["BENCH_BARE_PAGE"]).read_bytes()


@app.get("/api/tasks/")
def tasks():
    return Response(PAGE, mimetype="application/json")
