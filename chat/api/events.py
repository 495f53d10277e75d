"""``/v1/events``: trigger events about contacts, which flows and webhooks react to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chat.api.common import PageQuery, Strict
from chat.api.routing import Ctx, Reply, Router
from chat.services.events import NAME, NAME_MAX, EventFilter

router = Router("events")


# Dotted lower-case words (chat.services.events.NAME); a filter may end in ".*".
_NAME_WORDS = NAME.pattern.removeprefix("^").removesuffix("$")


class EventCreate(Strict):
    name: str = Field(
        min_length=1, max_length=NAME_MAX, pattern=f"^{_NAME_WORDS}$",
        description="dotted lower-case words", examples=["order.shipped"],
    )
    contact_id: str | None = Field(default=None, min_length=1, max_length=80)
    payload: dict[str, Any] = Field(default_factory=dict)


class EventQuery(PageQuery):
    name: str | None = Field(
        default=None, max_length=NAME_MAX, pattern=rf"^{_NAME_WORDS}(?:\.\*)?$",
        description="an exact name, or a prefix such as order.*",
    )
    contact_id: str | None = Field(default=None, max_length=80)


class EventOut(BaseModel):
    id: str
    name: str
    contact_id: str | None
    payload: dict[str, Any]
    created_at: str


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


@router.route(
    "GET", "/v1/events", summary="List events, newest first", query=EventQuery, response=EventPage
)
async def list_events(ctx: Ctx) -> Any:
    """``?name=order.*`` lists every event whose name starts with ``order.``."""
    q: EventQuery = ctx.query
    flt = EventFilter(name=q.name, contact_id=q.contact_id)
    return await ctx.services.events.list(ctx.workspace_id, flt, q.cursor, q.limit)


@router.route(
    "POST", "/v1/events", summary="Record an event", body=EventCreate, response=EventOut, status=201
)
async def record_event(ctx: Ctx) -> Any:
    """Sends the ``event.created`` webhook and lets flows react. A ``contact_id`` in the body
    that is not a contact of this workspace is 422 ``unknown_contact`` (the request is
    wrong); an unknown id in a path, as in ``GET /v1/events/{id}``, is 404."""
    body: EventCreate = ctx.body
    view = await ctx.services.events.record(
        ctx.workspace_id, body.name, body.contact_id, body.payload
    )
    return Reply(view, 201)


@router.route("GET", "/v1/events/{event_id}", summary="Read an event", response=EventOut)
async def get_event(ctx: Ctx) -> Any:
    return await ctx.services.events.get(ctx.workspace_id, ctx.path["event_id"])


@router.route("DELETE", "/v1/events/{event_id}", summary="Delete an event", status=204)
async def delete_event(ctx: Ctx) -> Any:
    await ctx.services.events.delete(ctx.workspace_id, ctx.path["event_id"])
    return Reply(None, 204)
