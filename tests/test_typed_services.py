"""Services hand typed values up (issue 7, point 18).

No public function or method in ``chat/services`` is annotated to return an untyped JSON
object (``dict[str, Any]`` alone, in a list or tuple, or with None): each returns a
``TypedDict`` (``chat.services.views``), a dataclass or a row. And the REST response
models, which document those shapes, name no field the service's shape lacks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chat.api import agents as api_agents
from chat.api import channels as api_channels
from chat.api import contacts as api_contacts
from chat.api import conversations as api_conversations
from chat.api import events as api_events
from chat.api import messages as api_messages
from chat.api import responses
from chat.api import webhooks as api_webhooks
from chat.services import agents, inbox, views

SERVICES = Path(__file__).resolve().parent.parent / "chat" / "services"

# Free-form JSON by nature: the keys are not ours to name.
UNTYPED_ON_PURPOSE = {
    "contacts.merge_attributes": "a contact's attributes are whatever keys the workspace sets",
    "message_store.Trigger.work_for": "an outbox payload: each trigger's kind reads its own keys",
    "bots.BotTurnTrigger.work_for": "a Trigger: its outbox payload (see message_store.Trigger)",
    "bot_runtime.replies_of": "message content, as NewMessage.content takes it (checked by Content)",
}

_UNTYPED = re.compile(r"\b(?:dict|Dict|Mapping|MutableMapping)\[str,\s*(?:Any|object)\]")
_BARE = {"dict", "Dict", "Any", "object"}


def untyped_returns(source: str, module: str) -> dict[str, str]:
    """``module.function`` / ``module.Class.method`` -> its return annotation, for the
    public ones annotated to return an untyped JSON object."""
    found: dict[str, str] = {}

    def check(fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> None:
        if fn.name.startswith("_") or fn.returns is None:
            return
        returns = ast.unparse(fn.returns).strip("'\"")
        if _UNTYPED.search(returns) or returns in _BARE:
            found[name] = returns

    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            check(node, f"{module}.{node.name}")
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    check(item, f"{module}.{node.name}.{item.name}")
    return found


def all_untyped_returns() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(SERVICES.glob("*.py")):
        found |= untyped_returns(path.read_text(), path.stem)
    return found


def test_no_public_service_function_returns_an_untyped_dict() -> None:
    untyped = {
        name: returns
        for name, returns in all_untyped_returns().items()
        if name not in UNTYPED_ON_PURPOSE
    }
    assert not untyped, "give these a TypedDict (chat/services/views.py):\n" + "\n".join(
        f"  {name} -> {returns}" for name, returns in sorted(untyped.items())
    )


def test_the_exceptions_are_still_untyped_functions() -> None:
    """An exception whose function was typed or removed is dropped from the list."""
    assert set(UNTYPED_ON_PURPOSE) <= set(all_untyped_returns())


def test_the_check_finds_every_untyped_form_and_only_public_ones() -> None:
    source = '''
def view(row) -> dict[str, Any]: ...
def rows() -> list[dict[str, Any]]: ...
def maybe() -> dict[str, Any] | None: ...
def pair() -> tuple[dict[str, Any], str]: ...
def anything() -> Any: ...
def _private() -> dict[str, Any]: ...
def typed() -> MessageView: ...
def page() -> Page[ContactView]: ...
class Service:
    async def get(self) -> dict[str, Any]: ...
    async def _helper(self) -> dict[str, Any]: ...
    async def typed(self) -> list[AgentView]: ...
class _Private:
    def get(self) -> dict[str, Any]: ...
'''
    assert set(untyped_returns(source, "m")) == {
        "m.view", "m.rows", "m.maybe", "m.pair", "m.anything", "m.Service.get",
    }


def keys_of(shape: Any) -> set[str]:
    return set(shape.__required_keys__ | shape.__optional_keys__)


# Each REST response model and the service shape it documents.
DOCUMENTED: list[tuple[type[BaseModel], Any]] = [
    (responses.MessageOut, views.MessageView),
    (responses.Party, views.Party),
    (responses.ConversationOut, views.ConversationView),
    (responses.Assignment, views.Assignee),
    (responses.StatusChange, views.StatusEventView),
    (responses.Attempt, views.AttemptView),
    (api_messages.MessageDetail, views.MessageDetail),
    (api_conversations.MessagePreview, views.MessagePreview),
    (api_conversations.InboxConversation, views.InboxConversationView),
    (api_conversations.ConversationPage, views.Page),
    (api_conversations.HistoryPage, inbox.History),
    (api_agents.AgentOut, views.AgentView),
    (api_agents.LoginResult, agents.LoginResult),
    (api_channels.ChannelOut, views.ChannelView),
    (api_contacts.IdentityOut, views.IdentityView),
    (api_contacts.ContactIdentityOut, views.ContactIdentityView),
    (api_contacts.ContactOut, views.ContactView),
    (api_contacts.ContactPage, views.Page),
    (api_events.EventOut, views.EventView),
    (api_events.EventPage, views.Page),
    (api_webhooks.WebhookOut, views.WebhookView),
    (api_webhooks.WebhookPage, views.Page),
    (api_webhooks.EventRef, views.CarriedEvent),
    (api_webhooks.DeliveryState, views.WebhookDeliveryState),
    (api_webhooks.DeliveryOut, views.WebhookAttemptView),
    (api_webhooks.DeliveryPage, views.Page),
]


def test_response_models_name_no_field_the_service_shape_lacks() -> None:
    """A response may carry more fields than its model names, never fewer."""
    missing = {
        f"{model.__name__} ({shape.__name__})": sorted(set(model.model_fields) - keys_of(shape))
        for model, shape in DOCUMENTED
        if set(model.model_fields) - keys_of(shape)
    }
    assert not missing, missing
