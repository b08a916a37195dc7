import marshmallow as ma

from taskapp.logs.models import Action
from taskapp.models import Source
from taskapp.web.schemas import (
    CommaSeparatedEnum,
    DateTime,
    DateTimeBound,
    Id,
    Ordering,
    PageArgsSchema,
    page_schema,
)


class ActivityLogSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"example": 318})
    task = ma.fields.Integer(
        attribute="task_id",
        metadata={"example": 42, "description": "The task's id (it may since be deleted)."},
    )
    task_title = ma.fields.String(metadata={"example": "Write the quarterly report"})
    action = ma.fields.Enum(Action, metadata={"example": "STATUS_CHANGED"})
    changes = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={
            "description": 'Each changed field as {"from": old, "to": new}.',
            "example": {"status": {"from": "PENDING", "to": "IN_PROGRESS"}},
        },
    )
    actor = ma.fields.Integer(
        attribute="actor_id",
        allow_none=True,
        metadata={"example": 2, "description": "Null for the system (the overdue job)."},
    )
    actor_username = ma.fields.String(allow_none=True, metadata={"example": "intern"})
    source = ma.fields.Enum(Source, by_value=ma.fields.String, metadata={"example": "api"})
    created_at = DateTime()
    request_id = ma.fields.String(
        allow_none=True,
        metadata={
            "example": "9f1c2a7e4b3d4e0f8a6b5c4d3e2f1a0b",
            "description": "The X-Request-ID of the request that wrote the entry; null "
            "for entries written by a job or the CLI.",
        },
    )
    job_id = ma.fields.String(
        allow_none=True,
        metadata={
            "example": "7f9c3a1e-2b4d-4c8e-9f1a-0b2c3d4e5f60",
            "description": "The id of the background job (Celery task) that wrote the "
            "entry, e.g. the overdue sweep; null for entries written by a request or the CLI.",
        },
    )


class ActivityLogQueryArgsSchema(PageArgsSchema):
    class Meta:
        unknown = ma.EXCLUDE

    task = Id(metadata={"description": "Entries about this task id."})
    action = CommaSeparatedEnum(Action)
    actor = Id(metadata={"description": "Entries written by this user id."})
    created_at__gte = DateTimeBound(upper=False)
    created_at__lte = DateTimeBound(upper=True)
    ordering = Ordering(("created_at", "id"), default="-created_at")


ActivityLogPageSchema = page_schema(ActivityLogSchema, "ActivityLogPageSchema")
