"""Recurrence rules: RFC 5545 RRULEs, parsed and expanded by python-dateutil.

A recurring task carries its rule, the date its series started (the rule's DTSTART: the
first occurrence's due date) and its index in the series (1 for the first). Completing
an occurrence asks :func:`next_due` for the rule's first date after the completed due
date; ``COUNT`` is honoured through the index (the RFC counts DTSTART as the first
instance even when it does not match the rule, which dateutil does not), ``UNTIL`` by
dateutil itself.

Only the parts a task list needs are accepted: ``FREQ`` (DAILY, WEEKLY, MONTHLY,
YEARLY), ``INTERVAL``, ``BYDAY``, ``BYMONTHDAY``, ``COUNT``, ``UNTIL``. Month ends are
dateutil's, which follow the RFC: ``BYMONTHDAY=31`` skips months without a 31st,
``BYMONTHDAY=-1`` is the last day of every month.
"""

from datetime import UTC, date, datetime, time

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

ALLOWED_PARTS = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"}
ALLOWED_FREQS = {DAILY, WEEKLY, MONTHLY, YEARLY}
MAX_LENGTH = 500
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
HORIZON_YEARS = 50
NEEDS_DUE_DATE = "A recurring task needs a due_date."


class InvalidRule(ValueError):
    """A rule that is malformed, unsupported, or unusable with the task's due date."""


def validate(rule: str, due_date: date | None) -> str:
    """The rule in canonical form (upper case, no ``RRULE:`` prefix) if it is valid for
    a task due on ``due_date``; :class:`InvalidRule` saying why otherwise."""
    if due_date is None:
        raise InvalidRule(NEEDS_DUE_DATE)
    text = _canonical(rule)
    parsed = _parse(text, due_date)
    if not 1 <= parsed._interval <= MAX_INTERVAL:
        raise InvalidRule(f"INTERVAL must be between 1 and {MAX_INTERVAL}.")
    if parsed._count is not None and not 1 <= parsed._count <= MAX_COUNT:
        raise InvalidRule(f"COUNT must be between 1 and {MAX_COUNT}.")
    monthdays = parsed._original_rule.get("bymonthday") or ()
    if "BYMONTHDAY=" in text and (not monthdays or any(not 1 <= abs(d) <= 31 for d in monthdays)):
        raise InvalidRule("BYMONTHDAY values must be 1 to 31 or -31 to -1.")
    if parsed._count != 1 and _bounded(parsed, due_date).after(_midnight(due_date, parsed)) is None:
        raise InvalidRule(
            f"The rule gives no date after the due date within {HORIZON_YEARS} years."
        )
    return text


def next_due(rule: str, series_start: date, after: date, occurrence: int) -> date | None:
    """The due date of occurrence ``occurrence + 1``: the rule's first date after
    ``after``, or None when the series is over (``COUNT`` reached, past ``UNTIL``)."""
    parsed = _parse(rule, series_start)
    if parsed._count is not None and occurrence >= parsed._count:
        return None
    following = _bounded(parsed, after).after(_midnight(after, parsed), inc=False)
    return following.date() if following is not None else None


def _canonical(rule: str) -> str:
    text = rule.strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text:
        raise InvalidRule("This field may not be blank.")
    if len(text) > MAX_LENGTH:
        raise InvalidRule(f"Ensure this field has no more than {MAX_LENGTH} characters.")
    if any(char in text for char in "\r\n:"):
        raise InvalidRule("Give a single RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO.")
    parts = text.split(";")
    if not all(name and value for name, _, value in (part.partition("=") for part in parts)):
        raise InvalidRule("Each rule part must be NAME=VALUE, separated by ';'.")
    names = [part.partition("=")[0] for part in parts]
    unsupported = sorted(set(names) - ALLOWED_PARTS)
    if unsupported:
        allowed = ", ".join(sorted(ALLOWED_PARTS))
        raise InvalidRule(f"Unsupported rule part {unsupported[0]}; use only {allowed}.")
    if len(set(names)) != len(names):
        raise InvalidRule("Each rule part may appear only once.")
    return text


def _parse(text: str, start: date) -> rrule:
    """dateutil's rrule for ``text`` starting at ``start``. An ``UNTIL`` in UTC
    (``...Z``) needs an aware DTSTART and a floating one a naive DTSTART; both are
    accepted (the date is all that matters to a task)."""
    error: Exception | None = None
    for tzinfo in (None, UTC):
        try:
            parsed = rrulestr(text, dtstart=datetime.combine(start, time(), tzinfo=tzinfo))
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as problem:
            error = problem
            continue
        if not isinstance(parsed, rrule):
            raise InvalidRule("Give a single RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO.")
        if parsed._freq not in ALLOWED_FREQS:
            raise InvalidRule("FREQ must be one of DAILY, WEEKLY, MONTHLY, YEARLY.")
        return parsed
    raise InvalidRule(f"Not a valid RRULE: {_reason(error)}.")


def _bounded(parsed: rrule, after: date) -> rrule:
    """The rule without COUNT (the occurrence index keeps it) and with UNTIL at most
    :data:`HORIZON_YEARS` after ``after``: a rule that never matches again (a Monday
    every 7 days from a Tuesday) ends the search instead of iterating to year 9999."""
    horizon = _midnight(date(min(after.year + HORIZON_YEARS, 9999), 12, 31), parsed)
    until = parsed._until if parsed._until is not None and parsed._until < horizon else horizon
    return parsed.replace(count=None, until=until)


def _midnight(day: date, parsed: rrule) -> datetime:
    return datetime.combine(day, time(), tzinfo=parsed._dtstart.tzinfo)


def _reason(error: Exception | None) -> str:
    return str(error).rstrip(".") if error is not None and str(error) else "unreadable value"
