"""The generated fast dump answers byte for byte what the schema describes.

Values are drawn per field from the schema itself, so a field added to TaskSchema later is
covered without touching this test."""

import enum
from datetime import UTC
from types import SimpleNamespace

import marshmallow as ma
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from taskapp.extensions import db
from taskapp.tasks.models import Task
from taskapp.tasks.routes import DUMP_TASK
from taskapp.tasks.schemas import TaskSchema
from taskapp.web.dumps import compile_dump

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def value_strategy(field: ma.fields.Field):
    kind = type(field)
    if isinstance(field, ma.fields.Integer):
        values = st.integers(min_value=-(2**31), max_value=2**31 - 1)
    elif isinstance(field, ma.fields.Enum):
        values = st.sampled_from(list(field.enum))
    elif isinstance(field, ma.fields.DateTime):
        values = st.datetimes(timezones=st.just(UTC))
    elif isinstance(field, ma.fields.Date):
        values = st.dates()
    elif kind in (ma.fields.String, ma.fields.Raw):
        values = TEXT
    else:
        values = st.one_of(TEXT, st.integers(), st.booleans())
    return st.one_of(st.none(), values) if field.allow_none else values


def objects_for(schema: ma.Schema):
    attributes = {
        field.attribute or name: value_strategy(field) for name, field in schema.dump_fields.items()
    }
    return st.fixed_dictionaries(attributes).map(lambda values: SimpleNamespace(**values))


@settings(max_examples=300, deadline=None)
@given(objects_for(TaskSchema()))
def test_task_fast_dump_equals_the_schema_byte_for_byte(task):
    assert orjson.dumps(DUMP_TASK(task)) == orjson.dumps(TaskSchema().dump(task))


class Odd(ma.Schema):
    """Field kinds the generator has no inline form for, data_key, by_value enums."""

    number = ma.fields.Integer(as_string=True)
    label = ma.fields.String(data_key="name")
    when = ma.fields.DateTime(format="%Y/%m/%d")
    source = ma.fields.Enum(enum.Enum("Source", "a b"), by_value=True)
    tags = ma.fields.List(ma.fields.String())
    doubled = ma.fields.Method("double")

    def double(self, obj):
        return obj.number * 2


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        SimpleNamespace,
        number=st.integers(-1000, 1000),
        label=TEXT,
        when=st.datetimes(timezones=st.just(UTC)),
        source=st.sampled_from(list(Odd._declared_fields["source"].enum)),
        tags=st.lists(TEXT, max_size=3),
    )
)
def test_fields_without_an_inline_form_are_dumped_by_the_field(obj):
    schema = Odd()
    assert orjson.dumps(compile_dump(schema)(obj)) == orjson.dumps(schema.dump(obj))


def test_schema_with_dump_hooks_is_dumped_by_marshmallow():
    class Hooked(ma.Schema):
        a = ma.fields.Integer()

        @ma.post_dump
        def add(self, data, **kwargs):
            return {**data, "b": 1}

    schema = Hooked()
    assert compile_dump(schema)(SimpleNamespace(a=1)) == {"a": 1, "b": 1}


def test_http_answers_are_the_schema_dump(api, app, intern, make_task):
    """The list and detail answers equal TaskSchema's dump of the ORM task."""

    made = make_task(intern, title="Ünïcode ✓", description="x" * 50, due_date="2026-01-02")
    detail = api.as_(intern).get(api.task(made["id"]))
    listing = api.as_(intern).get("/api/tasks/")
    with app.app_context():
        loaded = select(Task).where(Task.id == made["id"]).options(joinedload(Task.assigned_to))
        task = db.session.execute(loaded).scalar_one()
        expected = orjson.dumps(TaskSchema().dump(task))
    assert detail.data == expected
    assert orjson.dumps(listing.get_json()["results"][0]) == expected
