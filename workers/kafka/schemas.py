"""Typed events on the topics we consume; parsing failures name the reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class InvalidEvent(ValueError):
    """A message that cannot be parsed or validated; it goes to the DLQ with this reason."""


@dataclass(frozen=True)
class AssessmentCompleted:
    """``assessment.completed``: ``{eventId?, assessmentId, fundedAccountId?, config?, ruleSet?, ...}``."""

    assessment_id: str
    event_id: str | None = None
    funded_account_id: str | None = None
    config: dict[str, Any] | None = None
    rule_set: str | None = None

    @classmethod
    def parse(cls, raw: bytes | None) -> AssessmentCompleted:
        if raw is None:
            raise InvalidEvent("empty message (tombstone)")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidEvent("not a JSON object")
        assessment_id = _id(data.get("assessmentId", data.get("assessment_id")), "assessmentId", required=True)
        config = data.get("config")
        if config is not None and not isinstance(config, dict):
            raise InvalidEvent("config: must be an object")
        return cls(
            assessment_id=assessment_id,  # type: ignore[arg-type]
            event_id=_id(data.get("eventId", data.get("event_id")), "eventId"),
            funded_account_id=_id(data.get("fundedAccountId", data.get("funded_account_id")), "fundedAccountId"),
            config=config,
            rule_set=_id(data.get("ruleSet", data.get("rule_set")), "ruleSet"),
        )


def _id(value: Any, name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"{name}: missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent(f"{name}: must be a string or an integer")
    text = str(value).strip()
    if not text or len(text) > 64:
        raise InvalidEvent(f"{name}: must be 1 to 64 characters")
    return text
