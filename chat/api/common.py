"""Request pieces shared by several endpoints."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chat.domain.emails import normalise_email


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    cursor: str | None = Field(default=None, max_length=80)
    limit: int = Field(default=50, ge=1, le=200)


def _patch_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """What ``Patch`` enforces, in its JSON schema: at least one property, and ``null``
    only for the fields that take it."""
    schema["minProperties"] = 1
    nullable: frozenset[str] = getattr(model, "nullable", frozenset())
    for name, prop in schema.get("properties", {}).items():
        if name in nullable or "anyOf" not in prop:
            continue
        kinds = [k for k in prop.pop("anyOf") if k != {"type": "null"}]
        prop.pop("default", None)
        if len(kinds) == 1:
            prop.update(kinds[0])
        else:
            prop["anyOf"] = kinds


class Patch(Strict):
    """A PATCH body: only the fields given change, and at least one must be given.

    A field named in ``nullable`` may be sent as ``null`` (to clear it); any other field
    sent as ``null`` is refused. The JSON schema says both (``minProperties``, and no
    ``null`` in the other fields' types)."""

    nullable: ClassVar[frozenset[str]] = frozenset()
    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("cannot be null: leave the field out to keep it")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


# The schema's shape of an email address; normalise_email decides (and lower-cases it).
EMAIL_SHAPE = r"^\s*[^@\s]+@[^@\s]+\s*$"

Email = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=EMAIL_SHAPE, json_schema_extra={"format": "email"}),
    AfterValidator(normalise_email),
]
