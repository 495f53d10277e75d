"""``/v1/webhooks``: outbound webhook subscriptions and their delivery log.

Each delivery is POSTed with ``X-Parley-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>`` and retried with backoff on timeouts, 408, 429 and 5xx.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, JsonValue

from chat.api.common import PageQuery, Strict
from chat.api.responses import Attempt
from chat.api.routing import Ctx, Reply, Router
from chat.domain.channel_config import Url
from chat.domain.errors import Unprocessable
from chat.services import egress
from chat.services.webhooks import EVENT_TYPES

router = Router("webhooks")


def check_target(ctx: Ctx, url: str) -> None:
    """422 ``url_not_allowed`` for a receiver in the server's own network (see
    chat.services.egress), unless the operator allows those."""
    if ctx.services.settings.webhook_allow_private_networks:
        return
    problem = egress.written_problem(url)
    if problem is not None:
        raise Unprocessable(
            f"webhooks go to public addresses only: {problem}", code="url_not_allowed"
        )


# What a subscription may ask for: an event type, "*", or "<noun>.*". The service checks
# (422 unknown_event, chat.services.webhooks.event_filter); the schema lists the same.
EVENT_CHOICES: list[JsonValue] = [
    *sorted({*EVENT_TYPES, "*", *(f"{t.split('.')[0]}.*" for t in EVENT_TYPES)})
]


class WebhookBody(Strict):
    url: Url
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=20,
        description=f"Any of {', '.join(EVENT_TYPES)}; '*' for all, or '<noun>.*' "
        "(e.g. 'message.*').",
        json_schema_extra={"items": {"type": "string", "enum": EVENT_CHOICES}},
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=120,
        description="The signing secret; generated (whsec_...) when not given. Shown only once.",
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    active: bool
    secret: str = Field(description="in full only in the answer to its creation, else masked")
    created_at: str


class WebhookPage(BaseModel):
    data: list[WebhookOut]
    next_cursor: str | None


class EventRef(BaseModel):
    id: str | None
    type: str | None


class DeliveryState(BaseModel):
    id: str
    state: str = Field(description="pending, done, failed or cancelled")
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


class DeliveryOut(Attempt):
    message_id: str | None
    event: EventRef
    delivery: DeliveryState | None


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


@router.route(
    "GET", "/v1/webhooks", summary="List webhook subscriptions", query=PageQuery, access="admin",
    response=WebhookPage,
)
async def list_webhooks(ctx: Ctx) -> Any:
    q: PageQuery = ctx.query
    return await ctx.services.webhooks.list(ctx.workspace_id, q.cursor, q.limit)


@router.route(
    "POST",
    "/v1/webhooks",
    summary="Subscribe a URL to events; the secret is shown this once",
    body=WebhookBody,
    response=WebhookOut,
    status=201,
    access="admin",
)
async def create_webhook(ctx: Ctx) -> Any:
    body: WebhookBody = ctx.body
    check_target(ctx, body.url)
    view = await ctx.services.webhooks.create(ctx.workspace_id, body.url, body.events, body.secret)
    return Reply(view, 201)


@router.route(
    "GET", "/v1/webhooks/{webhook_id}", summary="Read a webhook subscription", access="admin",
    response=WebhookOut,
)
async def get_webhook(ctx: Ctx) -> Any:
    return await ctx.services.webhooks.get(ctx.workspace_id, ctx.path["webhook_id"])


@router.route(
    "DELETE",
    "/v1/webhooks/{webhook_id}",
    summary="Remove a subscription; its pending deliveries are cancelled",
    status=204,
    access="admin",
)
async def delete_webhook(ctx: Ctx) -> Any:
    await ctx.services.webhooks.delete(ctx.workspace_id, ctx.path["webhook_id"])
    return None


@router.route(
    "GET",
    "/v1/webhooks/{webhook_id}/deliveries",
    summary="Delivery attempts, newest first, with each delivery's state",
    query=PageQuery,
    response=DeliveryPage,
    access="admin",
)
async def list_deliveries(ctx: Ctx) -> Any:
    q: PageQuery = ctx.query
    return await ctx.services.webhooks.deliveries(
        ctx.workspace_id, ctx.path["webhook_id"], q.cursor, q.limit
    )
