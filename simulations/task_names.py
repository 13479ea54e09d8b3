"""The names of the Celery tasks, shared by those who send them and ``workers/tasks.py``.

The services send tasks by name, so simulations never imports the workers' code. A
name never changes: a renamed task orphans the messages already queued under the
old one (``tests/workers/test_tasks.py`` pins them).
"""

RUN_SIMULATION = "montecarlo.run_simulation"
RUN_SIMULATIONS = "montecarlo.run_simulations"
RUN_PENDING_JOBS = "montecarlo.run_pending_jobs"
SWEEP_STALE_JOBS = "montecarlo.sweep_stale_jobs"
SCHEDULE_DAILY_FUNDED_RUNS = "montecarlo.schedule_daily_funded_runs"
BUILD_BOOK_REPORTS = "montecarlo.build_book_reports"
