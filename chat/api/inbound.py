"""``/webhooks/{channel_id}``: where providers call back (chat.services.inbound does the work)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from chat.api.routing import Ctx, Router, read_body
from connectors.base import WebhookRequest

router = Router("inbound")

_ERRORS = (401, 403, 404, 413, 422)


async def _receive(ctx: Ctx) -> Response:
    request = ctx.request
    body = await read_body(request, ctx.services.settings.max_body_bytes)
    received = await ctx.services.inbound.receive(
        ctx.path["channel_id"],
        WebhookRequest(
            method=request.method,
            url=str(request.url),
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
        ),
    )
    answer = received.answer
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.route(
    "GET",
    "/webhooks/{channel_id}",
    summary="A provider's verification handshake",
    access="public",
    errors=_ERRORS,
    produces="text/plain",  # by default; whatever the connector answers (a challenge, XML)
)
async def provider_handshake(ctx: Ctx) -> Any:
    """Answered as the channel's connector says (e.g. echoing ``hub.challenge``)."""
    return await _receive(ctx)


@router.route(
    "POST",
    "/webhooks/{channel_id}",
    summary="A provider's callback: inbound messages, delivery statuses, reactions",
    access="public",
    errors=_ERRORS,
    produces="text/plain",  # by default; whatever the connector answers (a challenge, XML)
)
async def provider_callback(ctx: Ctx) -> Any:
    """Checked with the provider's own signature (401/403 and nothing stored when it
    fails). Each message is stored once however often the provider repeats it. 422
    ``channel_not_supported`` while no connector serves the channel's type."""
    return await _receive(ctx)
