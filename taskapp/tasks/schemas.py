from datetime import datetime

import marshmallow as ma

from taskapp.tasks.models import Priority, Status
from taskapp.web.schemas import (
    CONTROLS,
    BaseSchema,
    CommaSeparatedEnum,
    DateTime,
    DateTimeBound,
    Id,
    Ordering,
    OutOfRange,
    PageArgsSchema,
    PlainText,
    Text,
    page_schema,
    parse_datetime,
)

ORDERING_FIELDS = ("id", "title", "status", "priority", "due_date", "created_at", "updated_at")
CLIENT_STATUSES = [Status.PENDING, Status.IN_PROGRESS, Status.COMPLETED]
READ_ONLY_FIELDS = (
    "id",
    "assigned_to_username",
    "created_by",
    "created_at",
    "updated_at",
    "completed_at",
    "series",
)
RULE_EXAMPLE = "FREQ=WEEKLY;BYDAY=MO"
RULE_DESCRIPTION = (
    "An RFC 5545 RRULE: FREQ (DAILY, WEEKLY, MONTHLY, YEARLY) with optional INTERVAL, "
    "BYDAY, BYMONTHDAY, COUNT, UNTIL; needs a due_date. Completing the task creates the "
    "next occurrence. null for a one-off task."
)
REMIND_DESCRIPTION = (
    "When to remind the assignee (activity-log REMINDED entry, webhook, e-mail); "
    "changing it re-arms the reminder. Any offset accepted; naive means UTC."
)


class RemindAt(DateTime):
    """An ISO 8601 datetime with any offset (naive means UTC), answered in UTC with
    ``Z`` like every timestamp; parsed like the listings' datetime bounds, except that
    an instant outside years 1..9999 in UTC is a 400, never clamped."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid datetime.")
        try:
            return parse_datetime(value, clamp=False)
        except OutOfRange as error:
            raise ma.ValidationError(str(error)) from None
        except (ValueError, OverflowError):
            raise ma.ValidationError("Not a valid datetime.") from None


def _example(value) -> dict:
    return {"example": value}


class TaskSchema(ma.Schema):
    id = ma.fields.Integer(metadata=_example(42))
    title = ma.fields.String(metadata=_example("Write the quarterly report"))
    description = ma.fields.String(metadata=_example("Figures for Q3, two pages at most."))
    status = ma.fields.Enum(Status, metadata=_example("IN_PROGRESS"))
    priority = ma.fields.Enum(Priority, metadata=_example("HIGH"))
    due_date = ma.fields.Date(allow_none=True, metadata=_example("2026-12-01"))
    assigned_to = ma.fields.Integer(attribute="assigned_to_id", metadata=_example(2))
    assigned_to_username = ma.fields.String(metadata=_example("intern"))
    created_by = ma.fields.Integer(attribute="created_by_id", metadata=_example(1))
    created_at = DateTime()
    updated_at = DateTime()
    completed_at = DateTime(
        allow_none=True, metadata={"description": "Set when the task becomes COMPLETED."}
    )
    recurrence = ma.fields.String(
        allow_none=True, metadata={"example": RULE_EXAMPLE, "description": RULE_DESCRIPTION}
    )
    remind_at = RemindAt(
        allow_none=True,
        metadata={"example": "2026-11-30T08:00:00Z", "description": REMIND_DESCRIPTION},
    )
    series = ma.fields.Integer(
        attribute="series_id",
        allow_none=True,
        metadata={
            "example": 42,
            "description": "Read-only: the id shared by every occurrence of a recurring task.",
        },
    )


class TaskWriteSchema(BaseSchema):
    """Body of POST and PUT. Read-only fields sent back by a client (as DRF allows, e.g.
    a GET body edited and PUT back) are ignored; any other unknown field is refused."""

    title = PlainText(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        # No control character (see PlainText), and at least one character that
        # Python's str.strip() keeps: besides \s (as JSON Schema's regexes read it),
        # strip() also removes \x1c-\x1f and \x85.
        metadata={
            "pattern": f"^[^{CONTROLS}]*[^\\s\\x00-\\x1f\\x7f\\x85][^{CONTROLS}]*$",
            "example": "Write the quarterly report",
        },
    )
    description = PlainText(
        validate=ma.validate.Length(max=10_000),
        metadata=_example("Figures for Q3, two pages at most."),
    )
    status = ma.fields.String(
        validate=ma.validate.OneOf(
            [status.value for status in CLIENT_STATUSES],
            error="Must be one of: {choices} (OVERDUE is set only by the overdue job).",
        ),
        metadata={"description": "New tasks are PENDING unless given.", "example": "PENDING"},
    )
    priority = ma.fields.Enum(Priority, metadata=_example("HIGH"))
    due_date = ma.fields.Date(allow_none=True, metadata=_example("2026-12-01"))
    assigned_to = Id(
        strict=True,
        attribute="assigned_to_id",
        metadata={
            "description": (
                "An active user's id (ADMIN); an INTERN only their own. Defaults to the caller."
            ),
            "example": 2,
        },
    )
    recurrence = Text(
        allow_none=True,
        validate=ma.validate.Length(max=500),
        metadata={"example": RULE_EXAMPLE, "description": RULE_DESCRIPTION},
    )
    remind_at = RemindAt(
        allow_none=True,
        metadata={"example": "2026-11-30T08:00:00Z", "description": REMIND_DESCRIPTION},
    )

    @ma.pre_load
    def drop_read_only_fields(self, data, **kwargs):
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in READ_ONLY_FIELDS}
        return data

    @ma.post_load
    def status_as_enum(self, data, **kwargs):
        if "status" in data:
            data["status"] = Status(data["status"])
        return data

    @ma.post_load
    def normalise_new_fields(self, data, **kwargs):
        if data.get("recurrence") is not None and not data["recurrence"].strip():
            data["recurrence"] = None
        return data

    @ma.validates("title")
    def not_blank(self, value, **kwargs):
        if not value.strip():
            raise ma.ValidationError("This field may not be blank.")


class TaskPatchSchema(TaskWriteSchema):
    """Body of PATCH: any subset of the writable fields (used with ``partial=True``)."""


def _due_date(description: str) -> ma.fields.Date:
    """A date filter, without an example: Swagger UI pre-fills a parameter's example and
    sends it on Execute, so an example date would narrow every listing tried there."""
    return ma.fields.Date(metadata={"description": f"{description} `YYYY-MM-DD`."})


class TaskQueryArgsSchema(PageArgsSchema):
    class Meta:
        unknown = ma.EXCLUDE

    status = CommaSeparatedEnum(Status)
    priority = CommaSeparatedEnum(Priority)
    due_date = _due_date("Due on this day.")
    due_date__gte = _due_date("Due on or after this day.")
    due_date__lte = _due_date("Due on or before this day.")
    due_date__gt = _due_date("Due after this day.")
    due_date__lt = _due_date("Due before this day.")
    due_date__isnull = ma.fields.Boolean(
        metadata={"description": "true: only tasks without a due date; false: only with one."}
    )
    series = Id(metadata={"description": "Only the occurrences of this series."})
    recurrence__isnull = ma.fields.Boolean(
        metadata={"description": "false: only recurring tasks; true: only one-off tasks."}
    )
    created_at__gte = DateTimeBound(upper=False)
    created_at__lte = DateTimeBound(upper=True)
    assigned_to = Id(metadata={"description": "Assigned to this user id."})
    search = Text(
        validate=ma.validate.Length(max=200),
        metadata={"description": "Case-insensitive text in the title or the description."},
    )
    ordering = Ordering(ORDERING_FIELDS, default="-created_at")


class TaskStatsSchema(ma.Schema):
    total = ma.fields.Integer(metadata=_example(7))
    by_status = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata=_example({"PENDING": 3, "IN_PROGRESS": 2, "COMPLETED": 1, "OVERDUE": 1}),
    )
    by_priority = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata=_example({"LOW": 1, "MEDIUM": 4, "HIGH": 2}),
    )


TaskPageSchema = page_schema(TaskSchema, "TaskPageSchema")
