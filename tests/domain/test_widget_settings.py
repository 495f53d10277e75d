"""The web widget's settings in the in-app channel's config (``WidgetSettings``)."""

from __future__ import annotations

from chat.domain.channel_config import InAppConfig, to_stored, widget_settings

DEFAULTS = {
    "color": "#2563EB",
    "title": None,
    "greeting": None,
    "pre_chat_form": {
        "enabled": False,
        "fields": [{"key": "name", "required": False}, {"key": "email", "required": True}],
    },
}


def test_a_config_without_widget_settings_gives_the_defaults() -> None:
    assert widget_settings(None) == DEFAULTS
    assert widget_settings({"allowed_origins": ["*"]}) == DEFAULTS
    # Nothing is stored for them: the stored config stays as it was.
    assert to_stored(InAppConfig.model_validate({})) == {"allowed_origins": ["*"]}


def test_given_settings_win_and_the_rest_takes_its_default() -> None:
    stored = to_stored(InAppConfig.model_validate({"widget": {"color": "#0f766e", "greeting": "Hi"}}))
    assert widget_settings(stored) == {**DEFAULTS, "color": "#0f766e", "greeting": "Hi"}


def test_a_stored_config_the_model_no_longer_accepts_falls_back_to_the_defaults() -> None:
    # Written before a rule tightened, or by hand: the widget still starts.
    assert widget_settings({"widget": {"color": "red"}}) == DEFAULTS
    assert widget_settings({"widget": "blue"}) == DEFAULTS
