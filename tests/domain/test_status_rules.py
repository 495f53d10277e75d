"""The message status rule (``status_can_move``), checked for every pair of statuses.

The expected table is written out here, independently of ``STATUS_RANK``: a change to
the rule or to the ranks that lets a status move backwards, leave a final state, cancel
something already on its way or fail something already delivered shows up as one named
pair below.
"""

from __future__ import annotations

import itertools

import pytest

from chat.domain.enums import MessageStatus, status_can_move

S = MessageStatus
# The way forward, in order; ``failed`` and ``cancelled`` end a message's life.
FORWARD = [S.SCHEDULED, S.QUEUED, S.SENT, S.DELIVERED, S.READ]
FINAL = {S.FAILED, S.CANCELLED}

# Every allowed move; every other pair of the 7 x 7 must be refused.
ALLOWED: set[tuple[MessageStatus, MessageStatus]] = {
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.SENT),
    (S.SCHEDULED, S.DELIVERED),
    (S.SCHEDULED, S.READ),
    (S.SCHEDULED, S.FAILED),
    (S.SCHEDULED, S.CANCELLED),  # only a message not yet released can be cancelled
    (S.QUEUED, S.SENT),
    (S.QUEUED, S.DELIVERED),
    (S.QUEUED, S.READ),
    (S.QUEUED, S.FAILED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.READ),
    (S.SENT, S.FAILED),
    (S.DELIVERED, S.READ),  # once delivered it can no longer fail
}

PAIRS = list(itertools.product(list(MessageStatus), repeat=2))


def test_the_table_covers_every_status() -> None:
    assert set(FORWARD) | FINAL == set(MessageStatus)
    assert len(PAIRS) == 49


@pytest.mark.parametrize(("current", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_of_statuses(current: MessageStatus, new: MessageStatus) -> None:
    assert status_can_move(current, new) is ((current, new) in ALLOWED)


def test_a_status_never_moves_backwards_nor_stays_put() -> None:
    for i, current in enumerate(FORWARD):
        for new in FORWARD[: i + 1]:
            assert not status_can_move(current, new), f"{current} -> {new}"


def test_every_later_status_on_the_way_forward_is_reachable() -> None:
    for i, current in enumerate(FORWARD):
        for new in FORWARD[i + 1 :]:
            assert status_can_move(current, new), f"{current} -> {new}"


@pytest.mark.parametrize("final", sorted(FINAL))
def test_nothing_leaves_a_final_state(final: MessageStatus) -> None:
    assert [new for new in MessageStatus if status_can_move(final, new)] == []


def test_only_a_scheduled_message_can_be_cancelled() -> None:
    assert [s for s in MessageStatus if status_can_move(s, S.CANCELLED)] == [S.SCHEDULED]


def test_only_a_message_not_yet_delivered_can_fail() -> None:
    assert [s for s in MessageStatus if status_can_move(s, S.FAILED)] == [
        S.SCHEDULED,
        S.QUEUED,
        S.SENT,
    ]
