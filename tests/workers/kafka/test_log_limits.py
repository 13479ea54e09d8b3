"""Kafka outages are told in a few lines, not one per retry (workers.kafka.clients)."""

from __future__ import annotations

import logging

from simulations.log_context import OncePerOutage


def test_alike_lines_pass_once_a_period_with_how_many_were_held_back(caplog):
    log = logging.getLogger("test.once-per-outage")
    log.addFilter(OncePerOutage(every=0.2))
    with caplog.at_level(logging.INFO, logger="test.once-per-outage"):
        for ms in range(300):  # a retry loop: the same line with other numbers
            log.warning("Connect to ipv4#127.0.0.1:29092 failed: Connection refused (after %dms)", ms)
        log.warning("a different line")
        import time

        time.sleep(0.25)
        log.warning("Connect to ipv4#127.0.0.1:29092 failed: Connection refused (after %dms)", 7)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Connect to ipv4#127.0.0.1:29092 failed: Connection refused (after 0ms)"
    assert lines[1] == "a different line"
    assert lines[2].endswith("(after 7ms) (299 more like it in the last 0.2 s)")
    assert len(lines) == 3
