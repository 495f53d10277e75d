"""The small domain modules on their own: error shapes, ids, JSON text, config masking."""

from __future__ import annotations

import os
import re
import time

import pytest
from pydantic import ValidationError

from chat.domain import errors, ids, jsontext
from chat.domain.channel_config import (
    MASK,
    ChannelConfig,
    MaskedSecretError,
    is_masked,
    mask_value,
    masked,
    merged,
    parse,
    to_stored,
)
from chat.domain.channels import REGISTRY


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (errors.ParleyError, 400, "bad_request"),
        (errors.BadRequest, 400, "bad_request"),
        (errors.Unauthorized, 401, "unauthorized"),
        (errors.Forbidden, 403, "forbidden"),
        (errors.NotFound, 404, "not_found"),
        (errors.Conflict, 409, "conflict"),
        (errors.PayloadTooLarge, 413, "payload_too_large"),
        (errors.UnsupportedMediaType, 415, "unsupported_media_type"),
        (errors.Unprocessable, 422, "validation_error"),
        (errors.RateLimited, 429, "rate_limited"),
    ],
)
def test_each_error_has_its_status_and_default_code(cls: type, status: int, code: str) -> None:
    err = cls("it went wrong")
    assert (err.status, err.code, str(err)) == (status, code, "it went wrong")
    assert err.to_dict() == {"code": code, "message": "it went wrong", "details": None}
    assert err.headers == {}


def config_of(channel_type: str) -> type[ChannelConfig]:
    return REGISTRY.spec(channel_type).config


def test_an_error_may_name_its_own_code_and_details() -> None:
    err = errors.Conflict("taken", code="duplicate_client_message_id", details=[{"at": 1}])
    assert err.to_dict() == {
        "code": "duplicate_client_message_id",
        "message": "taken",
        "details": [{"at": 1}],
    }
    assert errors.Conflict("again").code == "conflict"  # the class default is untouched


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.01, "1"), (1.0, "1"), (1.01, "2"), (2.5, "3"), (60.0, "60")]
)
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(
    retry_after: float, header: str
) -> None:
    err = errors.RateLimited("slow down", retry_after=retry_after)
    assert err.headers == {"Retry-After": header}
    assert err.retry_after == retry_after and err.code == "rate_limited"


def test_a_rate_limit_without_a_wait_sends_no_header() -> None:
    assert errors.RateLimited("slow down").headers == {}


def test_ids_carry_their_prefix_and_sort_by_creation() -> None:
    made = [ids.new_id("msg") for _ in range(2000)]
    assert all(re.fullmatch(r"msg_[0-9a-f]{24}", i) for i in made)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert len({i[-10:] for i in made}) == len(made)  # the random part differs too


def test_secrets_are_prefixed_url_safe_random_text() -> None:
    one, two = ids.new_secret("whsec"), ids.new_secret("whsec")
    assert one != two
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{32}", one)
    assert re.fullmatch(r"pk_[A-Za-z0-9_-]{16}", ids.new_secret("pk", 12))


def test_json_text_is_compact_and_round_trips() -> None:
    value = {"a": [1, 2.5, None, True], "é": "ü"}
    assert jsontext.dumps(value) == '{"a":[1,2.5,null,true],"é":"ü"}'
    assert jsontext.loads(jsontext.dumps(value)) == value
    assert jsontext.loads(jsontext.dumps(value).encode()) == value


@pytest.mark.parametrize(
    "big", [2**70 + 1, -(2**63) - 1, 2**64, 10**30 + 7, 2**64 - 1, -(2**63), 10**18 + 3]
)
def test_integers_of_any_size_come_back_exactly(big: int) -> None:
    value = {"big": big, "list": [big], "é": "ü"}
    text = jsontext.dumps(value)
    assert text == f'{{"big":{big},"list":[{big}],"é":"ü"}}'
    for given in (text, text.encode()):
        back = jsontext.loads(given)
        assert back == value and type(back["big"]) is int


def test_long_digit_runs_inside_strings_and_fractions_read_as_usual() -> None:
    value = {"phone": "12345678901234567890", "x": 0.12345678901234567, "n": [1, 2]}
    assert jsontext.loads(jsontext.dumps(value)) == value
    assert jsontext.loads(b'{"n": 1}') == {"n": 1}
    with pytest.raises(ValueError):
        jsontext.loads("{not json")


def test_a_secret_is_masked_showing_at_most_its_last_four_characters() -> None:
    assert mask_value("x" * 11) == MASK
    assert mask_value("abcdefgh1234") == MASK + "1234"
    assert mask_value(12345678901234) == MASK
    assert is_masked(MASK + "1234") and is_masked(MASK)
    assert not is_masked("1234" + MASK) and not is_masked(None)


def test_reads_mask_only_the_secret_keys() -> None:
    config = {"account_sid": "AC" + "1" * 32, "auth_token": "secret-token-5678", "from_number": "+1"}
    assert masked(config_of("sms"), config) == {**config, "auth_token": MASK + "5678"}


def test_a_merge_patch_sets_removes_and_keeps_secrets_sent_back_masked() -> None:
    current = {"account_sid": "AC1", "auth_token": "secret-token-5678", "from_number": "+1"}
    patch = {"auth_token": MASK + "5678", "from_number": None, "messaging_service_sid": "MG1"}
    assert merged(config_of("sms"), current, patch) == {
        "account_sid": "AC1",
        "auth_token": "secret-token-5678",
        "messaging_service_sid": "MG1",
    }
    assert merged(config_of("sms"), current, {"auth_token": "new-token"})["auth_token"] == "new-token"
    assert merged(config_of("sms"), current, {}) == current and merged(config_of("sms"), current, {}) is not current


@pytest.mark.parametrize(
    "patch",
    [{"auth_token": MASK + "0000"}, {"auth_token": MASK}],
)
def test_a_masked_value_that_is_not_the_stored_one_is_refused(patch: dict[str, str]) -> None:
    current = {"account_sid": "AC1", "auth_token": "secret-token-5678"}
    with pytest.raises(MaskedSecretError) as info:
        merged(config_of("sms"), current, patch)
    assert info.value.keys == ["auth_token"]
    assert "auth_token" in str(info.value)


def test_a_masked_secret_for_a_key_never_stored_is_refused() -> None:
    with pytest.raises(MaskedSecretError):
        merged(config_of("sms"), {"account_sid": "AC1"}, {"auth_token": MASK + "5678"})


def test_a_rate_limit_keeps_a_code_and_details_of_its_own() -> None:
    err = errors.RateLimited("slow down", retry_after=2.0, code="login_limited", details={"n": 3})
    assert err.to_dict() == {"code": "login_limited", "message": "slow down", "details": {"n": 3}}
    assert err.headers == {"Retry-After": "2"}


def test_every_stale_masked_secret_is_named() -> None:
    current = {"app_secret": "a-real-app-secret", "verify_token": "a-real-verify-token"}
    patch = {"app_secret": MASK + "0000", "verify_token": MASK + "1111"}
    with pytest.raises(MaskedSecretError) as info:
        merged(config_of("whatsapp"), current, patch)
    assert sorted(info.value.keys) == ["app_secret", "verify_token"]
    assert f"send the real value of {', '.join(info.value.keys)}, not" in str(info.value)


def test_removing_a_key_that_is_not_there_is_fine() -> None:
    assert merged(config_of("sms"), {"account_sid": "AC1"}, {"from_number": None}) == {"account_sid": "AC1"}


class FrozenClock:
    """``time`` for chat.domain.ids whose nanoseconds never move."""

    @staticmethod
    def time_ns() -> int:
        return 1_800_000_000_123_456_789


def test_ids_made_within_one_microsecond_still_increase_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "time", FrozenClock)
    monkeypatch.setattr(ids, "_last", [0])  # this process's ids so far stay out of it
    ticks = [int(ids.new_id("x")[2:16], 16) for _ in range(5)]
    assert ticks[0] >= 1_800_000_000_123_456
    assert ticks == list(range(ticks[0], ticks[0] + 5))


def test_an_id_tells_when_it_was_made_in_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last", [0])  # ids made just before may run ahead of the clock
    before = time.time_ns() // 1000
    made = int(ids.new_id("x")[2:16], 16)
    after = time.time_ns() // 1000
    assert before <= made <= after


def test_a_forked_child_draws_other_random_bytes_than_its_parent() -> None:
    ids.new_id("x")  # the pool has bytes left that both would otherwise share
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, ids.new_id("x")[-10:].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert len(theirs) == 10 and theirs != ids.new_id("x")[-10:]


def test_inapp_origins_are_scheme_host_and_port_only() -> None:
    ok = ["*", "https://shop.example.com", "http://localhost:3000"]
    assert to_stored(parse(config_of("inapp"), {"allowed_origins": ok})) == {"allowed_origins": ok}
    assert to_stored(parse(config_of("inapp"), {})) == {"allowed_origins": ["*"]}
    for bad in ["https://shop.example.com/", "https://a.com/path", "https://a.com?x", "https://a.com#x",
                "shop.example.com", "ftp://a.com", "https://", "https://a.com://b"]:
        with pytest.raises(ValidationError):
            parse(config_of("inapp"), {"allowed_origins": [bad]})


def test_urls_are_checked_but_kept_as_written() -> None:
    stored = to_stored(parse(config_of("wns"), {"client_id": "ms-app://x", "client_secret": "s",
                                     "token_url": "https://login.example.com/token"}))
    assert stored["token_url"] == "https://login.example.com/token"
    with pytest.raises(ValidationError):
        parse(config_of("wns"), {"client_id": "ms-app://x", "client_secret": "s", "token_url": "not a url"})


def test_a_stored_config_is_plain_json_data() -> None:
    stored = to_stored(
        parse(config_of("email"), {"smtp_host": "smtp.acme.com", "from_address": "support@acme.com"})
    )
    assert stored == {
        "smtp_host": "smtp.acme.com",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "from_address": "support@acme.com",
        "inbound": "webhook",
    }
    assert {type(v) for v in stored.values()} == {str, int}  # no enum members


def test_a_bad_origin_is_named_in_the_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse(config_of("inapp"), {"allowed_origins": ["https://a.com/path"]})
    assert "'https://a.com/path' is not an origin" in str(info.value)
