"""Marshmallow pieces shared by every resource's schemas: safe text, ids, the
query-argument fields of the listings (each documents itself truthfully in the OpenAPI
spec), the base schema of request bodies and the page envelope."""

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import Enum

import marshmallow as ma

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


def Id(**kwargs) -> ma.fields.Integer:
    """A positive 32-bit id (the database's integer). Pass ``strict=True`` in JSON
    bodies, where "5" is not an integer; query strings are always text."""
    return ma.fields.Integer(validate=ID_RANGE, **kwargs)


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


DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_datetime(value: str) -> datetime:
    """ISO 8601 / RFC 3339 datetime; naive means UTC; a leap second counts as :59;
    fractions beyond microseconds are cut; a '+' that arrived as a space is '+'; an
    instant outside years 1..9999 in UTC is clamped to the nearest representable one."""
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
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


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
    """``ordering=-priority,due_date`` -> ``[("priority", True), ("due_date", False)]``."""

    def __init__(self, allowed: tuple[str, ...], **kwargs):
        self.allowed = allowed
        one = "-?(" + "|".join(allowed) + ")"
        metadata = {
            "type": "string",
            "pattern": f"^{one}(,{one})*$",
            "description": (
                f"Comma-separated fields from {', '.join(allowed)}; prefix '-' for descending."
            ),
        }
        super().__init__(metadata=metadata, **kwargs)

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

    page = ma.fields.Integer(
        load_default=1, validate=ma.validate.Range(min=1), metadata={"description": "From 1."}
    )
    page_size = ma.fields.Integer(
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

    count = ma.fields.Integer(metadata={"description": "Absent when paging by cursor."})
    next = ma.fields.String(required=True, allow_none=True)
    previous = ma.fields.String(required=True, allow_none=True)


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return type(name, (PageSchema,), {"results": ma.fields.List(ma.fields.Nested(item_schema))})
