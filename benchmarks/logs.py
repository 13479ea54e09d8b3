"""What a log line costs: the service's formatter (structlog's, with the ids in context)
against the plain ``logging.Formatter`` it replaced, both measured in this run.

A job logs two lines of its own (created, simulated) beside Celery's two per task; the
goal is that they stay a small fraction of a job's pipeline overhead (milliseconds).

    ./deploy/bench.sh logs [--lines 20000]
"""

from __future__ import annotations

import argparse
import io
import logging
import logging.config
import statistics
import time

from benchmarks.report import Report
from montecarlo.log_config import logging_config
from simulations import log_context

PLAIN = {
    "version": 1,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["out"], "level": "INFO"},
}


def per_line_us(config: dict, lines: int, repeats: int = 5) -> float:
    """Microseconds per INFO line written to memory, the median of ``repeats`` runs."""
    logging.config.dictConfig(config)
    sink = io.StringIO()
    for handler in logging.getLogger().handlers:
        handler.setStream(sink)  # type: ignore[attr-defined]
    logger = logging.getLogger("simulations.services.execution")
    runs = []
    with log_context.bound_contextvars(request_id="0123456789abcdef0123456789abcdef", worker_id="host:1234"):
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(lines):
                with log_context.bound_contextvars(job_id="4f1c2a9e-0000-4000-8000-000000000000", task_id="t"):
                    logger.info("job %s: %s in %.1f ms", i, "completed", 2.1)
            runs.append((time.perf_counter() - start) / lines * 1e6)
            sink.seek(0)
            sink.truncate()
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    out = Report("logs", "What a log line costs")
    baseline = per_line_us(PLAIN, args.lines)
    out.line(f"{args.lines:,} INFO lines per run, median of 5 runs; each with a request, job, task and worker id")
    out.line(f"{'formatter':<34} | {'µs / line':>9} | {'x plain':>7}")
    out.line("-" * 58)
    out.line(f"{'logging.Formatter (plain, no ids)':<34} | {baseline:>9.1f} | {1.0:>7.2f}")
    for fmt in ("text", "json"):
        cost = per_line_us(logging_config(fmt=fmt, level="INFO"), args.lines)
        out.line(f"{'structlog ' + fmt + ' (with the ids)':<34} | {cost:>9.1f} | {cost / baseline:>7.2f}")
    out.save()


if __name__ == "__main__":
    main()
