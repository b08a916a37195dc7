"""PASS/FAIL bookkeeping and a small HTTP client for the fault scenarios."""

import json
import time
from dataclasses import dataclass, field

import httpx

ADMIN = "faults-admin"
PASSWORD = "faults-password-not-secret"
DETAIL_503 = "Service temporarily unavailable; try again shortly."


@dataclass
class Check:
    scenario: str
    name: str
    ok: bool
    figures: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def check(self, scenario: str, name: str, ok: bool, figures: str = "") -> bool:
        self.checks.append(Check(scenario, name, bool(ok), figures))
        mark = "PASS" if ok else "FAIL"
        print(f"{mark}  [{scenario}] {name}" + (f": {figures}" if figures else ""), flush=True)
        return bool(ok)

    def info(self, scenario: str, text: str) -> None:
        print(f"      [{scenario}] {text}", flush=True)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass
class Answer:
    status: int  # 0: no HTTP answer at all (connection error, timeout)
    body: object
    headers: dict
    elapsed: float
    error: str = ""

    @property
    def is_json(self) -> bool:
        return self.body is not NOT_JSON

    def get(self, key: str, default=None):
        return self.body.get(key, default) if isinstance(self.body, dict) else default

    @property
    def detail_only(self) -> bool:
        """The contract's error body: exactly ``{"detail": "<message>"}``."""
        return (
            isinstance(self.body, dict)
            and set(self.body) == {"detail"}
            and isinstance(self.body["detail"], str)
        )


NOT_JSON = object()


class Client:
    """Synchronous httpx client that never raises: a transport failure is status 0."""

    def __init__(self, base: str, timeout: float = 15):
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> Answer:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            response = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            return Answer(0, NOT_JSON, {}, time.monotonic() - started, type(error).__name__)
        elapsed = time.monotonic() - started
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            body = NOT_JSON if response.content else None
        return Answer(response.status_code, body, dict(response.headers), elapsed)

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> Answer:
        return self.call(
            "POST", "/api/auth/login/", json={"username": username, "password": password}
        )


def codes(answers) -> dict[int, int]:
    out: dict[int, int] = {}
    for answer in answers:
        out[answer.status] = out.get(answer.status, 0) + 1
    return dict(sorted(out.items()))


def fmt_codes(counts: dict[int, int]) -> str:
    return ", ".join(f"{code or 'no answer'}: {n}" for code, n in counts.items()) or "none"
