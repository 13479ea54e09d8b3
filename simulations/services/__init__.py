"""Every change to a SimulationJob happens in this package, and nowhere else.

- ``jobs``: create, claim, finish, cancel (the state machine and its outbox events)
- ``dispatch``: sending created jobs to the workers (the API's, several per message)
- ``recovery``: jobs of dead workers (sweep, redelivery, attempt cap)
- ``intake``: jobs from completed assessments and the daily funded-account run
- ``execution``: running a job in a worker
- ``batch``: many jobs at once: new ones by one COPY, finishing many in one transaction
  (the batch writer's flush)
- ``rule_sets``: named rule sets in versions, and applying one to a job
"""

from simulations.services.batch import JobChange, finish_jobs  # noqa: F401
from simulations.services.book import build_book_report, build_due_book_reports  # noqa: F401
from simulations.services.dispatch import JobId, enqueue_job, wake_workers  # noqa: F401
from simulations.services.execution import (  # noqa: F401
    reserve_pending_jobs,
    run_job,
    run_pending_jobs,
    run_small_jobs,
    write_now,
)
from simulations.services.intake import (  # noqa: F401
    CompletedAssessment,
    create_daily_funded_jobs,
    create_job_for_completed_assessment,
    create_jobs_for_completed_assessments,
)
from simulations.services.jobs import (  # noqa: F401
    Claim,
    cancel_job,
    complete_job,
    create_job,
    create_jobs,
    engine_limits,
    fail_job,
    record_progress,
    rerun_job,
    start_job,
)
from simulations.services.recovery import (  # noqa: F401
    claim_job,
    reenqueue_held_by_dead_worker,
    reenqueue_stale_pending,
    release_takes_of_dead_worker,
    requeue_jobs_of_dead_workers,
    requeue_stale_job,
    wake_for_waiting_api_jobs,
)
from simulations.services.rule_sets import RuleSets, check_rule_set, save_rule_set  # noqa: F401
