"""A fake Rasa server's REST channel (``POST /webhooks/rest/webhook``) on 127.0.0.1.

It stands in for Rasa's NLU and dialogue policy with a few keyword rules (``RULES``:
words -> intent -> actions) and an entity pattern (``#42`` is ``order_id``), keeps a
tracker per sender (slots, events, latest message), and runs each action the way Rasa
does: an ``utter_*`` response from its domain, or a custom action through the REAL action
server's ``/webhook`` protocol (``{"next_action", "sender_id", "tracker", "domain",
"version"}`` -> ``{"events", "responses"}``), applying the ``slot`` events it returns.
Its answer is what Rasa's REST channel answers: a list of ``{"recipient_id", "text"?,
"buttons"?, "image"?, "custom"?}``. Every request and action call is recorded.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from tests.fakes.local import ScriptedFake

RULES: list[tuple[tuple[str, ...], str, list[str]]] = [
    (("hello", "hi"), "greet", ["utter_greet"]),
    (("order",), "order_status", ["action_order_status"]),
    (("billing", "refund"), "billing", ["action_handoff"]),
]
RESPONSES = {
    "utter_greet": [{"text": "Hello! I can tell you where your order is."}],
    "utter_default": [{"text": "Sorry, I did not get that."}],
}
DOMAIN = {
    "version": "3.1",
    "intents": [intent for _, intent, _ in RULES],
    "entities": ["order_id"],
    "slots": {"order_id": {"type": "text", "mappings": [{"type": "custom"}]}},
    "responses": RESPONSES,
    "actions": ["action_order_status", "action_handoff"],
}
_ORDER = re.compile(r"#(\d+)")


@dataclass
class FakeRasa(ScriptedFake[None]):
    action_server: str = ""  # e.g. http://127.0.0.1:5055
    trackers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    action_calls: list[dict[str, Any]] = field(default_factory=list)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST" or request.path != "/webhooks/rest/webhook":
            return web.json_response({"error": "not found"}, status=404)
        body = json.loads(await request.read())
        self.requests.append(body)
        self._changed.set()
        sender, text = str(body["sender"]), str(body.get("message") or "")
        tracker = self.trackers.setdefault(sender, _new_tracker(sender))
        intent, actions = _understand(text)
        entities = [
            {"entity": "order_id", "value": m.group(1), "start": m.start(), "end": m.end()}
            for m in _ORDER.finditer(text)
        ]
        tracker["latest_message"] = {
            "text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": entities,
            "metadata": body.get("metadata") or {},
        }
        tracker["events"].append({"event": "user", "timestamp": time.time(), "text": text,
                                  "parse_data": tracker["latest_message"]})
        out: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=10) as http:
            for action in actions:
                responses = RESPONSES.get(action)
                if responses is None:
                    responses = await self._run_action(http, action, tracker)
                tracker["events"].append({"event": "action", "name": action, "timestamp": time.time()})
                out += [_rest_message(sender, r) for r in responses]
        return web.json_response(out)

    async def _run_action(self, http: httpx.AsyncClient, action: str, tracker: dict[str, Any]) -> list[dict[str, Any]]:
        call = {"next_action": action, "sender_id": tracker["sender_id"], "tracker": tracker,
                "domain": DOMAIN, "version": "3.6.0"}
        r = await http.post(f"{self.action_server}/webhook", json=call)
        r.raise_for_status()
        answer = r.json()
        self.action_calls.append({"action": action, "answer": answer})
        for event in answer.get("events", []):
            if event.get("event") == "slot":
                tracker["slots"][event["name"]] = event["value"]
            tracker["events"].append(event)
        responses: list[dict[str, Any]] = answer.get("responses", [])
        return responses


def _new_tracker(sender: str) -> dict[str, Any]:
    return {
        "sender_id": sender, "slots": {"order_id": None}, "latest_message": {}, "events": [],
        "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None,
    }


def _understand(text: str) -> tuple[str, list[str]]:
    words = text.lower()
    for keys, intent, actions in RULES:
        if any(k in words for k in keys):
            return intent, actions
    return "nlu_fallback", ["utter_default"]


def _rest_message(sender: str, response: dict[str, Any]) -> dict[str, Any]:
    """One response as Rasa's REST channel (CollectingOutputChannel) sends it."""
    message: dict[str, Any] = {"recipient_id": sender}
    for key in ("text", "buttons", "image", "attachment"):
        if response.get(key):
            message[key] = response[key]
    if response.get("custom") or response.get("json_message"):
        message["custom"] = response.get("custom") or response.get("json_message")
    return message
