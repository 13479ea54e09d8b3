"""gunicorn settings for the web process (``gunicorn -c deploy/gunicorn.conf.py montecarlo.wsgi``).

gunicorn sits behind nginx (``helm/montecarlo/files/nginx.conf.template``), which reads
whole requests from clients before passing them on: a slow client holds an nginx
connection, not one of these few threads. Its metrics are served by this master
process on their own port (``WEB_METRICS_PORT``), which the proxy does not pass on.
"""

import glob
import os
import tempfile

from montecarlo.log_config import logging_config

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 25
accesslog = "-"
# gunicorn's lines in the service's format (LOG_FORMAT), the access line with the
# request id the app returned, so it joins the app's lines for the same request
logconfig_dict = logging_config(
    fmt=os.environ.get("LOG_FORMAT", "text"),
    level=os.environ.get("LOG_LEVEL", "INFO"),
    levels=os.environ.get("LOG_LEVELS", ""),
)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'

# Every web worker writes its metrics here and the master's exporter reads them all;
# without the setting, a directory of this run's own.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="montecarlo-web-metrics-")


def on_starting(server):
    """A restarted container keeps its directory: last run's files would be counted again."""
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def when_ready(server):
    port = int(os.environ.get("WEB_METRICS_PORT", "9101"))
    if port:
        from simulations.metrics import serve_metrics

        serve_metrics(port)
        server.log.info("metrics on port %d", port)


def worker_exit(server, worker):
    """A web worker stops: the jobs it created in the last few ms go to the broker now."""
    from simulations.services.dispatch import flush_dispatcher

    flush_dispatcher()


def child_exit(server, worker):
    """A web worker exited: drop its live gauges from the shared metrics directory."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
