import marshmallow as ma

from taskapp.models import Priority, Status
from taskapp.web.schemas import (
    BaseSchema,
    CommaSeparatedEnum,
    DateTime,
    DateTimeBound,
    Id,
    Ordering,
    PageArgsSchema,
    Text,
    page_schema,
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
)


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


class TaskWriteSchema(BaseSchema):
    """Body of POST and PUT. Read-only fields sent back by a client (as DRF allows, e.g.
    a GET body edited and PUT back) are ignored; any other unknown field is refused."""

    title = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        # At least one character that Python's str.strip() keeps: besides \s (as JSON
        # Schema's regexes read it), strip() also removes \x1c-\x1f and \x85.
        metadata={
            "pattern": "^[^\\x00]*[^\\s\\x00\\x1c-\\x1f\\x85][^\\x00]*$",
            "example": "Write the quarterly report",
        },
    )
    description = Text(
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

    @ma.validates("title")
    def not_blank(self, value, **kwargs):
        if not value.strip():
            raise ma.ValidationError("This field may not be blank.")


class TaskPatchSchema(TaskWriteSchema):
    """Body of PATCH: any subset of the writable fields (used with ``partial=True``)."""


def _due_date(description: str) -> ma.fields.Date:
    return ma.fields.Date(metadata={"description": description, "example": "2026-12-01"})


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
