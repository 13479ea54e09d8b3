"""Running a job: what a worker does with a delivered task."""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from django.conf import settings

from simulations.clients import CoreServiceError, core_service_client
from simulations.engine import EngineValidationError, SimulationConfig, TradeHistory, simulate
from simulations.models import SimulationJob
from simulations.services.jobs import JobId, complete_job, engine_limits, fail_job, record_progress
from simulations.services.recovery import claim_job
from workers import metrics

logger = logging.getLogger(__name__)

def run_job(*, job_id: JobId, worker_id: str, is_alive: Callable[[str], bool] = lambda _: True,
            max_attempts: Optional[int] = None) -> Optional[SimulationJob]:
    """Claim, simulate and finish one job: what a worker does with a delivered task.

    Bad input and an unusable Core Service fail the job with the reason; any other
    error fails it too and is re-raised so the worker logs and counts it. Returns
    ``None`` when there was nothing to claim (a duplicate or late delivery).
    """
    job = claim_job(job_id=job_id, worker_id=worker_id, is_alive=is_alive,
                    max_attempts=max_attempts or settings.SIMULATION_MAX_ATTEMPTS)
    if job is None:
        logger.info("job %s: nothing to claim (already taken or finished)", job_id)
        return None
    claim = (worker_id, job.attempts)
    started = time.perf_counter()
    try:
        history = _load_history(job)
        config = SimulationConfig.from_dict(job.input_data.get("config"), engine_limits())
        result = simulate(history, config, limits=engine_limits(), progress=_progress_writer(job))
    except (EngineValidationError, CoreServiceError) as exc:
        return fail_job(job_id=job.id, error=str(exc), claim=claim)
    except BaseException as exc:  # SoftTimeLimitExceeded, bugs: never leave the job running
        fail_job(job_id=job.id, error=f"internal error: {exc.__class__.__name__}: {exc}", claim=claim)
        raise
    metrics.JOB_DURATION.labels(method=config.method).observe(time.perf_counter() - started)
    metrics.PATHS_SIMULATED.inc(result.paths)
    return complete_job(job_id=job.id, result=result, claim=claim)

def _load_history(job: SimulationJob) -> TradeHistory:
    trades = job.input_data.get("trades")
    if trades is not None:
        return TradeHistory.from_records(trades)
    return core_service_client().trade_history(
        assessment_id=job.assessment_id, funded_account_id=job.funded_account_id
    )

def _progress_writer(job: SimulationJob) -> Callable[[int, int], None]:
    interval = settings.SIMULATION_PROGRESS_INTERVAL
    last = [0.0]

    def write(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            last[0] = now
            record_progress(job_id=job.id, paths_done=done, paths_total=total)

    return write
