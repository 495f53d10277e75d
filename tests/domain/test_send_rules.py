"""The send-time rules as pure decisions: the customer-service window, message tags and
the country allow-list, each read from a channel type's capabilities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chat.domain.channels import REGISTRY
from chat.domain.countries import DEFAULT_SEND_COUNTRIES
from chat.domain.send_rules import country_refusal, tag_refusal, window_refusal

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TEXT = {"type": "text", "text": "hello"}
TEMPLATE = {"type": "template", "name": "order_update", "language": "en"}
WHATSAPP = REGISTRY.spec("whatsapp").capabilities
MESSENGER = REGISTRY.spec("messenger").capabilities


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def test_the_registry_says_which_types_are_under_which_rule() -> None:
    windowed = {s.type for s in REGISTRY if s.capabilities.window_hours}
    assert {"whatsapp", "messenger"} <= windowed
    assert {s.type for s in REGISTRY if s.capabilities.country_restricted} == {"sms", "voice"}
    assert {s.type for s in REGISTRY if s.capabilities.sms_segments} == {"sms"}
    assert {s.type for s in REGISTRY if s.capabilities.message_tags} == {"messenger"}


def test_free_form_goes_within_24_hours_of_the_customers_last_message() -> None:
    assert window_refusal("whatsapp", WHATSAPP, TEXT, None, ago(hours=23, minutes=59), NOW) is None
    assert window_refusal("whatsapp", WHATSAPP, TEXT, None, ago(hours=24), NOW) is None
    late = window_refusal("whatsapp", WHATSAPP, TEXT, None, ago(hours=24, seconds=1), NOW)
    assert late is not None and late.code == "template_required"
    assert late.detail["window_hours"] == 24
    assert late.detail["last_inbound_at"] == "2026-11-30T11:59:59Z"
    assert "template" in late.message


def test_before_the_customer_ever_wrote_only_a_template_goes() -> None:
    never = window_refusal("whatsapp", WHATSAPP, TEXT, None, None, NOW)
    assert never is not None and never.code == "template_required"
    assert never.detail["last_inbound_at"] is None
    assert window_refusal("whatsapp", WHATSAPP, TEMPLATE, None, None, NOW) is None


def test_a_template_does_not_pass_the_window_on_a_type_without_templates() -> None:
    assert not MESSENGER.templates
    refused = window_refusal("messenger", MESSENGER, TEMPLATE, None, ago(days=2), NOW)
    assert refused is not None and refused.code == "template_required"
    assert "HUMAN_AGENT" in refused.message


def test_human_agent_stretches_the_messenger_window_to_seven_days() -> None:
    assert window_refusal("messenger", MESSENGER, TEXT, "HUMAN_AGENT", ago(days=6, hours=23), NOW) is None
    late = window_refusal("messenger", MESSENGER, TEXT, "HUMAN_AGENT", ago(days=7, seconds=1), NOW)
    assert late is not None and late.detail["window_hours"] == 168
    assert window_refusal("messenger", MESSENGER, TEXT, "HUMAN_AGENT", None, NOW) is not None


def test_the_update_tags_go_at_any_time() -> None:
    for tag in ("CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"):
        assert window_refusal("messenger", MESSENGER, TEXT, tag, ago(days=90), NOW) is None
        assert window_refusal("messenger", MESSENGER, TEXT, tag, None, NOW) is None


def test_types_without_a_window_are_never_refused_by_it() -> None:
    for spec in REGISTRY:
        if spec.capabilities.window_hours is None:
            assert window_refusal(spec.type, spec.capabilities, TEXT, None, None, NOW) is None


def test_a_tag_must_be_one_the_channel_type_takes() -> None:
    assert tag_refusal("messenger", MESSENGER, "HUMAN_AGENT") is None
    assert tag_refusal("whatsapp", WHATSAPP, None) is None
    refused = tag_refusal("whatsapp", WHATSAPP, "HUMAN_AGENT")
    assert refused is not None and refused.code == "message_tag_not_supported"
    assert refused.detail["message_tag"] == "HUMAN_AGENT"


def test_a_number_outside_the_allowed_countries_is_refused_naming_its_country() -> None:
    assert country_refusal("+14155550100", DEFAULT_SEND_COUNTRIES) is None
    assert country_refusal("+14165550100", DEFAULT_SEND_COUNTRIES) is None  # Canada
    refused = country_refusal("+5511912345678", DEFAULT_SEND_COUNTRIES)
    assert refused is not None and refused.code == "country_not_allowed"
    assert refused.detail == {"code": "country_not_allowed", "address": "+5511912345678", "country": "BR"}
    assert country_refusal("+14165550100", {"US"}) is not None  # +1 alone is not the US
    unknown = country_refusal("+12975550100", DEFAULT_SEND_COUNTRIES)
    assert unknown is not None and unknown.detail["country"] is None
