"""Marshmallow pieces shared by every resource's schemas: safe text, ids, timestamps,
the query-argument fields of the listings (each documents itself truthfully in the
OpenAPI spec: a default or example is always a value the API accepts), the base schema
of request bodies, the base schema of answers and the page envelope."""

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import Enum

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_instance

from taskapp.web.api import MAX_ID

NO_NUL = "^[^\\x00]*$"
ID_RANGE = ma.validate.Range(min=1, max=MAX_ID)


class Text(ma.fields.String):
    """A string that the database can store: no NUL character (PostgreSQL refuses it)
    and no lone surrogate (not encodable as UTF-8)."""

    def __init__(self, **kwargs):
        metadata = {"pattern": NO_NUL, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Null characters are not allowed.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ma.ValidationError("Not valid Unicode text.") from None
        return text


CONTROLS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f"
"""C0 control characters but tab, line feed and carriage return, and DEL (a JSON
Schema character class body)."""
NO_CONTROLS = f"^[^{CONTROLS}]*$"
CONTROL = re.compile(f"[{CONTROLS}]")


class PlainText(Text):
    """:class:`Text` without control characters (but tab, LF and CR): a task's title or
    description reaches terminals, e-mails and calendar files, where an ESC or a BEL
    does harm and a client never means one."""

    def __init__(self, **kwargs):
        metadata = {"pattern": NO_CONTROLS, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        found = CONTROL.search(text)
        if found:
            raise ma.ValidationError(
                f"Remove the control character U+{ord(found.group()):04X} (at position "
                f"{found.start() + 1}): only tab, line feed and carriage return are allowed."
            )
        return text


class Email(Text, ma.fields.Email):
    """An e-mail address that is also :class:`Text` (no NUL, no lone surrogate): every
    text field goes through the same rules before it reaches the database."""


class FullMatch(ma.validate.Regexp):
    """A pattern the whole string must match: ``re.match`` with ``$`` lets a trailing
    newline through (``"admin\\n"`` would be a second user beside ``admin``)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class Integer(ma.fields.Integer):
    """An integer that, given as text (a query string, a form), is written in ASCII
    digits: marshmallow reads text with ``int()``, which takes any script's digits and
    underscores (Arabic-Indic ``"\\u0661"`` and ``"1_0"`` would be 1 and 10)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not ASCII_INTEGER.fullmatch(value.strip()):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")


def Id(**kwargs) -> Integer:
    """A positive 32-bit id (the database's integer). Pass ``strict=True`` in JSON
    bodies, where "5" is not an integer; query strings are always text."""
    return Integer(validate=ID_RANGE, **kwargs)


def _choice_list_pattern(choices) -> str:
    one = "(" + "|".join(re.escape(choice) for choice in choices) + ")"
    return f"^{one}(,{one})*$"


class CommaSeparatedEnum(ma.fields.Field):
    """``status=PENDING,IN_PROGRESS`` -> ``[Status.PENDING, Status.IN_PROGRESS]``."""

    def __init__(self, enum: type[Enum], **kwargs):
        self.enum = enum
        choices = [member.value for member in enum]
        metadata = {
            "type": "string",
            "pattern": _choice_list_pattern(choices),
            "description": f"One or more of {', '.join(choices)}, comma-separated.",
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        try:
            return [self.enum(part.strip()) for part in value.split(",")]
        except ValueError:
            choices = ", ".join(member.value for member in self.enum)
            raise ma.ValidationError(f"Select one or more of: {choices}.") from None


OUT_OF_RANGE = (
    "Date/time out of range: in UTC it must fall between 0001-01-01T00:00:00Z and "
    "9999-12-31T23:59:59.999999Z."
)


class OutOfRange(ValueError):
    """A datetime whose instant, in UTC, falls outside years 1..9999."""


DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_datetime(value: str, *, clamp: bool = True) -> datetime:
    """ISO 8601 / RFC 3339 datetime; naive means UTC; a leap second counts as :59;
    fractions beyond microseconds are cut; a '+' that arrived as a space is '+'. An
    instant outside years 1..9999 in UTC is clamped to the nearest representable one
    (a filter bound means the same then), or with ``clamp=False`` (a value to store)
    raises :class:`OutOfRange`."""
    if len(value) > 16 and value[-6] == " ":
        value = f"{value[:-6]}+{value[-5:]}"
    match = DATETIME.match(value)
    if not match:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone = UTC
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        zone = timezone(offset if sign == "+" else -offset)
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        min(int(second or 0), 59),
        micro,
        tzinfo=zone,
    )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+02:00 is before year 1 in UTC
        if not clamp:
            raise OutOfRange(OUT_OF_RANGE) from None
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


class DateTime(ma.fields.DateTime):
    """A timestamp in an answer, in UTC with a ``Z`` as DRF writes it
    (``2026-03-01T09:30:00.123456Z``). Every answer's timestamps use this field."""

    def __init__(self, **kwargs):
        metadata = {"example": "2026-03-01T09:30:00.123456Z", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")


class DateTimeBound(ma.fields.Field):
    """A date or an ISO 8601 datetime. A bare date is that day's first instant in UTC
    (lower bounds) or its last (upper bounds); a naive datetime is taken as UTC."""

    def __init__(self, *, upper: bool, **kwargs):
        self.upper = upper
        metadata = {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "description": "A date (YYYY-MM-DD) or an ISO 8601 datetime (UTC if no offset).",
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                return datetime.combine(day, time.max if self.upper else time.min, UTC)
            return parse_datetime(value)
        except (ValueError, OverflowError):
            raise ma.ValidationError("Enter a valid date or date/time.") from None


class Ordering(ma.fields.Field):
    """``ordering=-priority,due_date`` -> ``[("priority", True), ("due_date", False)]``.

    ``default`` is written as a client would send it (``"-created_at"``): the spec shows
    that text, and the view receives it parsed like any other value."""

    def __init__(self, allowed: tuple[str, ...], *, default: str, **kwargs):
        self.allowed = allowed
        one = "-?(" + "|".join(allowed) + ")"
        metadata = {
            "type": "string",
            "pattern": f"^{one}(,{one})*$",
            "description": (
                f"Comma-separated fields from {', '.join(allowed)}; prefix '-' for "
                f"descending. Ties break by id."
            ),
            "example": default,
        }
        super().__init__(metadata=metadata, **kwargs)
        self.load_default = self._deserialize(default, None, None)

    def _serialize(self, value, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return ",".join(("-" if descending else "") + name for name, descending in value)

    def _deserialize(self, value, attr, data, **kwargs) -> list[tuple[str, bool]]:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        keys = []
        for part in value.split(","):
            name = part.strip()
            descending = name.startswith("-")
            name = name.removeprefix("-")
            if name not in self.allowed:
                allowed = ", ".join(self.allowed)
                raise ma.ValidationError(f"Unknown ordering field {name!r}; use: {allowed}.")
            keys.append((name, descending))
        return keys


class Boolean(ma.fields.Boolean):
    """A body's boolean: JSON ``true`` or ``false`` only, as the spec's type says (0, 1
    or "yes" are a 400). A form's text is turned into a boolean before it gets here
    (see ``web.api.form_values``). Query strings keep marshmallow's lenient Boolean."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


DRF_MESSAGES = {
    "required": "This field is required.",
    "null": "This field may not be null.",
}


class BaseSchema(ma.Schema):
    """Unknown fields are refused (no mass assignment); messages read like DRF's."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.error_messages = {**field_obj.error_messages, **DRF_MESSAGES}


class PageArgsSchema(BaseSchema):
    """``page`` and ``page_size`` as DRF's PageNumberPagination takes them."""

    page = Integer(
        load_default=1,
        validate=ma.validate.Range(min=1),
        metadata={"description": "Page number, from 1; past the last page answers 404."},
    )
    page_size = Integer(
        load_default=20,
        validate=ma.validate.Range(min=1),
        metadata={"description": "Default 20; values above 100 are cut to 100."},
    )
    cursor = ma.fields.String(
        validate=ma.validate.Length(max=2000),
        metadata={
            "description": (
                "Page by keyset instead of page numbers: empty for the first page, then "
                "the opaque value from next/previous. The answer has no count."
            )
        },
    )


class PageSchema(ma.Schema):
    """DRF's page envelope; subclasses set ``results``."""

    count = ma.fields.Integer(
        metadata={
            "optional": True,
            "description": "Matching items on all pages; absent when paging by cursor.",
        }
    )
    next = ma.fields.String(
        allow_none=True,
        metadata={"description": "URL of the next page; null on the last page."},
    )
    previous = ma.fields.String(
        allow_none=True,
        metadata={"description": "URL of the previous page; null on the first page."},
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return type(name, (PageSchema,), {"results": ma.fields.List(ma.fields.Nested(item_schema))})


class AnswerConverter(OpenAPIConverter):
    """The one rule for answers in the spec: a schema that is not a request's (every
    body and query schema derives from BaseSchema) describes an answer, and an answer
    carries each field it dumps, null where the field allows null. So each of its fields
    is required, unless it is load-only or marked ``metadata={"optional": True}`` (a
    field that only some answers carry). New resources inherit this without doing
    anything; generated clients then type the fields as always present."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        instance = resolve_schema_instance(schema)
        if not isinstance(instance, BaseSchema):
            required = [
                field.data_key or name
                for name, field in instance.fields.items()
                if not field.load_only and not field.metadata.get("optional")
            ]
            if required:
                jsonschema["required"] = required
        return jsonschema


class SpecPlugin(MarshmallowPlugin):
    Converter = AnswerConverter
