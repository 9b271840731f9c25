"""Triggers, the events sources receive, and what each trigger decided about each event.

Decisions are a closed vocabulary, so "why didn't my agent fire?" has a precise answer:

==================  ===========================================================
decision            meaning
==================  ===========================================================
``fired``           the trigger fired a run (``run_id``)
``filtered_out``    the event type or the payload filter did not match (which, and the values)
``rate_limited``    the trigger already fired ``rate_limit_per_hour`` times this window
``paused``          the trigger is paused
``agent_archived``  the trigger's agent is archived
``busy``            (ledgers written before durable execution only) the server's
                    in-memory queue was full and the fire was dropped
==================  ===========================================================

An event is never accepted and then left undecided or unfired for lack of room: when the
backlog is full the delivery is refused before anything is recorded (503 with
``Retry-After`` on webhooks), so ``busy`` is no longer recorded.

Payload filters (``filter_config``) map a dotted payload path to what it must be: a value
(equal, or contained when the payload field is a list, e.g. labels or mentions) or a list
of values (any of them). Every key must match. A path step through a list of objects takes
that field of each (``issue.labels.name`` is every label's name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cairn.domain.deliveries import DeliveryFacts
from cairn.domain.sources import DataSource
from cairn.text import record

TriggerStatus = Literal["active", "paused"]
Decision = Literal["fired", "filtered_out", "rate_limited", "paused", "agent_archived", "busy"]
EventStatus = Literal["accepted", "rejected"]


@dataclass(slots=True)
class Trigger:
    """Binds an agent to a source's events."""

    trigger_id: str
    sandbox_id: str
    agent_id: str
    data_source_id: str
    event_type_filter: str = "*"
    filter_config: dict[str, Any] | None = None
    rate_limit_per_hour: int | None = None
    status: TriggerStatus = "active"
    fire_count: int = 0
    last_fired_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    agent_slug: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self)


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """One trigger's decision about one event."""

    event_id: str
    trigger_id: str
    decision: Decision
    detail: dict[str, Any] | None = None
    run_id: str | None = None
    decided_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self)


@dataclass(slots=True)
class Event:
    """An event a source received (or a delivery it rejected, with the reason)."""

    event_id: str
    sandbox_id: str
    source_id: str
    event_type: str | None
    payload: Any
    status: EventStatus = "accepted"
    sender_event_id: str | None = None
    reject_reason: str | None = None
    received_at: datetime | None = None
    decisions: list[TriggerDecision] | None = None
    delivery: DeliveryFacts | None = None

    @classmethod
    def received_now(
        cls,
        source: DataSource,
        event_type: str | None,
        payload: Any,
        sender_event_id: str | None,
        delivery: DeliveryFacts | None,
    ) -> Event:
        """A delivery to ``source`` accepted just now, under a new event id."""
        from cairn.ids import new_id

        return cls(
            event_id=new_id("evt"),
            sandbox_id=source.sandbox_id,
            source_id=source.source_id,
            event_type=event_type,
            payload=payload,
            sender_event_id=sender_event_id,
            received_at=datetime.now(UTC),
            delivery=delivery,
        )

    def to_dict(self) -> dict[str, Any]:
        """The shown form, with the decisions when loaded."""
        decisions = self.decisions
        return record(self) | {
            "decisions": [d.to_dict() for d in decisions] if decisions is not None else None,
            "delivery": self.delivery.to_dict() if self.delivery else None,
        }


_MISSING = object()


def payload_value(payload: Any, path: str) -> Any:
    """The value at a dotted path of the payload, or a sentinel when absent."""
    value = payload
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif (
            isinstance(value, list)
            and step.lstrip("-").isdigit()
            and -len(value) <= int(step) < len(value)
        ):
            value = value[int(step)]
        elif isinstance(value, list):
            # A list of objects projects the field, so ``issue.labels.name`` reads every
            # label's name (providers send labels, mentions and assignees as objects).
            found = [item[step] for item in value if isinstance(item, dict) and step in item]
            if not found:
                return _MISSING
            value = [v for item in found for v in (item if isinstance(item, list) else [item])]
        else:
            return _MISSING
    return value


def _matches(expected: Any, actual: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(expected, list):
        return any(_matches(option, actual) for option in expected)
    if isinstance(actual, list) and not isinstance(expected, list):
        return expected in actual
    return bool(expected == actual)


def event_type_matches(pattern: str, event_type: str | None) -> bool:
    """``*`` matches everything; otherwise the exact type."""
    return pattern == "*" or pattern == event_type


def filter_mismatch(filter_config: dict[str, Any] | None, payload: Any) -> dict[str, Any] | None:
    """``None`` when the payload passes every filter key, else which key failed and why."""
    for path, expected in (filter_config or {}).items():
        actual = payload_value(payload, path)
        if not _matches(expected, actual):
            return {
                "filter": "filter_config",
                "field": path,
                "expected": expected,
                "actual": None if actual is _MISSING else actual,
                "missing": actual is _MISSING,
            }
    return None
