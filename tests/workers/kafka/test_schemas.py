"""Decoding assessment.completed: what is accepted, and the reasons for what is not."""

from __future__ import annotations

import pytest

from workers.kafka.schemas import AssessmentCompleted, InvalidEvent


def test_a_valid_event_in_either_case():
    e = AssessmentCompleted.parse(b'{"eventId": "e-1", "assessmentId": 42, "fundedAccountId": "FA-1", "x": 1}')
    assert (e.assessment_id, e.event_id, e.funded_account_id, e.config) == ("42", "e-1", "FA-1", None)
    assert AssessmentCompleted.parse(b'{"assessment_id": "A", "config": {"paths": 5}}').config == {"paths": 5}
    assert AssessmentCompleted.parse(b'{"assessmentId": "A", "ruleSet": "100k-2phase"}').rule_set == "100k-2phase"
    assert AssessmentCompleted.parse(b'{"assessmentId": "A"}').rule_set is None


@pytest.mark.parametrize(
    "raw,reason",
    [
        (None, "tombstone"),
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "assessmentId: missing"),
        (b'{"assessmentId": ""}', "assessmentId: missing"),
        (b'{"assessmentId": true}', "assessmentId: must be"),
        (b'{"assessmentId": {"id": 1}}', "assessmentId: must be"),
        (b'{"assessmentId": "' + b"x" * 65 + b'"}', "1 to 64"),
        (b'{"assessmentId": "A", "config": [1]}', "config: must be an object"),
        (b'{"assessmentId": "A", "ruleSet": ["x"]}', "ruleSet: must be"),
    ],
)
def test_invalid_events_say_why(raw, reason):
    with pytest.raises(InvalidEvent, match=reason):
        AssessmentCompleted.parse(raw)
