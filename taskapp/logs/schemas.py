import marshmallow as ma

from taskapp.models import Action, Source
from taskapp.web.schemas import (
    CommaSeparatedEnum,
    DateTimeBound,
    Id,
    Ordering,
    PageArgsSchema,
    page_schema,
)


class ActivityLogSchema(ma.Schema):
    id = ma.fields.Integer()
    task = ma.fields.Integer(attribute="task_id")
    task_title = ma.fields.String()
    action = ma.fields.Enum(Action)
    changes = ma.fields.Dict(keys=ma.fields.String())
    actor = ma.fields.Integer(attribute="actor_id", allow_none=True)
    actor_username = ma.fields.String(allow_none=True)
    source = ma.fields.Enum(Source, by_value=True)
    created_at = ma.fields.DateTime()


class ActivityLogQueryArgsSchema(PageArgsSchema):
    class Meta:
        unknown = ma.EXCLUDE

    task = Id()
    action = CommaSeparatedEnum(Action)
    actor = Id()
    created_at__gte = DateTimeBound(upper=False)
    created_at__lte = DateTimeBound(upper=True)
    ordering = Ordering(("created_at", "id"), load_default=[("created_at", True)])


ActivityLogPageSchema = page_schema(ActivityLogSchema, "ActivityLogPageSchema")
