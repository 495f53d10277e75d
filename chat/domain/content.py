"""Message content: one tagged union shared by every channel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextContent(_Content):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=10_000)
    # What a channel read from the customer's action besides the words, as named
    # values: ``{"digits": "12"}`` for keys pressed in a phone call.
    data: dict[Annotated[str, Field(max_length=50)], Annotated[str, Field(max_length=200)]] | None = (
        Field(default=None, max_length=20)
    )


class MediaContent(_Content):
    type: Literal["media"] = "media"
    url: HttpUrl
    mime_type: str | None = Field(default=None, max_length=200)
    caption: str | None = Field(default=None, max_length=4_000)
    filename: str | None = Field(default=None, max_length=255)


class TemplateContent(_Content):
    type: Literal["template"] = "template"
    name: str = Field(min_length=1, max_length=200)
    language: str | None = Field(default=None, max_length=20)
    parameters: dict[str, Any] | list[Any] = Field(default_factory=dict)


class Button(_Content):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=200)


class ButtonsContent(_Content):
    type: Literal["buttons"] = "buttons"
    text: str = Field(min_length=1, max_length=4_000)
    buttons: list[Button] = Field(min_length=1, max_length=10)


class LocationContent(_Content):
    type: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)


Content = Annotated[
    TextContent | MediaContent | TemplateContent | ButtonsContent | LocationContent,
    Field(discriminator="type"),
]
