import marshmallow as ma

from taskapp.events.signed import MAX_TOKEN_LENGTH
from taskapp.tasks.schemas import TaskSchema
from taskapp.web.schemas import BaseSchema, DateTime

MAX_FEED_PAGE = 1000


class ChangesArgsSchema(BaseSchema):
    since = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=MAX_TOKEN_LENGTH),
        metadata={"description": "The `next` of the previous call; empty: the full current set"},
    )
    page_size = ma.fields.Integer(
        load_default=100,
        validate=ma.validate.Range(min=1, max=MAX_FEED_PAGE),
        metadata={"description": f"Entries (at most as many tasks) per call, 1..{MAX_FEED_PAGE}"},
    )


class ChangesSchema(ma.Schema):
    changed = ma.fields.List(ma.fields.Nested(TaskSchema))
    removed = ma.fields.List(ma.fields.Integer())
    next = ma.fields.String(metadata={"description": "Opaque: the `since` of the next call"})
    more = ma.fields.Boolean(metadata={"description": "true: call again at once"})


class StreamArgsSchema(BaseSchema):
    ticket = ma.fields.String(
        validate=ma.validate.Length(max=100),
        metadata={"description": "From POST /api/events/ticket/ (single-use, 60 s)"},
    )
    last_event_id = ma.fields.String(
        validate=ma.validate.Length(max=MAX_TOKEN_LENGTH),
        metadata={"description": "Resume after this event id (as the Last-Event-ID header)"},
    )


class TicketSchema(ma.Schema):
    ticket = ma.fields.String()
    expires_at = DateTime()
