"""Registered task names are part of the wire format: renaming one orphans queued messages."""

from __future__ import annotations

from montecarlo.celery import app


def test_registered_task_names_are_pinned():
    app.loader.import_default_modules()
    ours = sorted(name for name in app.tasks if name.startswith("montecarlo."))
    assert ours == [
        "montecarlo.build_book_reports",
        "montecarlo.run_pending_jobs",
        "montecarlo.run_simulation",
        "montecarlo.run_simulations",
        "montecarlo.schedule_daily_funded_runs",
        "montecarlo.sweep_stale_jobs",
    ]


def test_simulation_task_options_survive_crashes():
    for name in ("montecarlo.run_simulation", "montecarlo.run_simulations", "montecarlo.run_pending_jobs"):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost and task.ignore_result
        assert app.amqp.router.route({}, name)["queue"].name == "simulations"
    conf = app.conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] >= 2 * conf.task_time_limit
    assert (
        conf.result_backend_transport_options["visibility_timeout"]
        == conf.broker_transport_options["visibility_timeout"]
    )
