"""Marshmallow fields for query arguments shared by the task and log listings."""

from datetime import UTC, date, datetime, time
from enum import Enum

import marshmallow as ma


class CommaSeparatedEnum(ma.fields.Field):
    """``status=PENDING,IN_PROGRESS`` -> ``[Status.PENDING, Status.IN_PROGRESS]``."""

    def __init__(self, enum: type[Enum], **kwargs):
        self.enum = enum
        choices = ", ".join(member.value for member in enum)
        metadata = {"description": f"One or more of {choices}, comma-separated."}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        try:
            return [self.enum(part.strip()) for part in value.split(",")]
        except ValueError:
            choices = ", ".join(member.value for member in self.enum)
            raise ma.ValidationError(f"Select one or more of: {choices}.") from None


class DateTimeBound(ma.fields.Field):
    """A date or an ISO 8601 datetime. A bare date is that day's first instant in UTC
    (lower bounds) or its last (upper bounds); a naive datetime is taken as UTC."""

    def __init__(self, *, upper: bool, **kwargs):
        self.upper = upper
        description = "A date (YYYY-MM-DD) or an ISO 8601 datetime."
        super().__init__(metadata={"description": description}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                return datetime.combine(day, time.max if self.upper else time.min, UTC)
            if len(value) > 16 and value[-6] == " ":
                value = f"{value[:-6]}+{value[-5:]}"
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ma.ValidationError("Enter a valid date or date/time.") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Ordering(ma.fields.Field):
    """``ordering=-priority,due_date`` -> ``[("priority", True), ("due_date", False)]``."""

    def __init__(self, allowed: tuple[str, ...], **kwargs):
        self.allowed = allowed
        description = (
            f"Comma-separated fields from {', '.join(allowed)}; prefix '-' for descending."
        )
        super().__init__(metadata={"description": description}, **kwargs)

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
