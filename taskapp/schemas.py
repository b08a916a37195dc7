"""Schema base classes shared by every blueprint."""

import marshmallow as ma

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


class PageSchema(ma.Schema):
    """DRF's page envelope; subclasses set ``results``."""

    count = ma.fields.Integer(required=True)
    next = ma.fields.String(required=True, allow_none=True)
    previous = ma.fields.String(required=True, allow_none=True)


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return type(name, (PageSchema,), {"results": ma.fields.List(ma.fields.Nested(item_schema))})
