"""Real Celery worker processes for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# what a prefork child logs when its set-up is done (workers.signals.prepare_child_process)
CHILD_READY = re.compile(rb"worker process \d+ ready")


class WorkerProcess:
    """``celery -A montecarlo worker`` in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        concurrency: int = 1,
        queues: str = "simulations,maintenance",
    ):
        self.name = name
        self.env = env
        self.log_path = log_dir / f"worker-{name}.log"
        self.concurrency = concurrency
        self.queues = queues
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> WorkerProcess:
        """Start it and wait until it takes tasks: the main process consuming and, with
        prefork, every child past its set-up (the kernels loaded, which takes seconds
        on a cold cache; tasks sent meanwhile wait, and a benchmark's first row would
        count the wait and the loading)."""
        log = open(self.log_path, "ab")
        marker = log.tell()
        pool = self.env.get("WORKER_POOL", "prefork")
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "montecarlo",
            "worker",
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "-n",
            f"{self.name}@%h",
            "-P",
            pool,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        env = dict(self.env, WORKER_CONCURRENCY=str(self.concurrency), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {self.tail()}")
            written = self.log_path.read_bytes()[marker:]
            if b" ready." in written and (pool != "prefork" or len(CHILD_READY.findall(written)) >= self.concurrency):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s: {self.tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        """Warm shutdown: SIGTERM to the main process only (as Kubernetes sends it to
        PID 1), which lets it stop its children; SIGKILL to all if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: parent and prefork children, no goodbyes."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class BeatProcess:
    """``celery -A montecarlo beat`` with the DatabaseScheduler, logging to a file."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_path = log_dir / "beat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BeatProcess:
        log = open(self.log_path, "ab")
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "montecarlo",
            "beat",
            "--loglevel",
            "INFO",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--max-interval",
            "1",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class BridgeProcess:
    """``manage.py kafka_bridge`` as its own process (consumer + outbox relay)."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "bridge"):
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, *, wait_until_up: bool = True) -> BridgeProcess:
        log = open(self.log_path, "ab")
        marker = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "kafka_bridge"],
            cwd=ROOT,
            env=dict(self.env, PYTHONUNBUFFERED="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until_up:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited: {self.log_path.read_text()[-3000:]}")
            if b"kafka bridge up" in self.log_path.read_bytes()[marker:]:
                return self
            time.sleep(0.2)
        raise RuntimeError("bridge not up in time")

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
