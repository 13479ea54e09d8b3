"""How many CPUs a process may use, as the kernels' thread count is sized from it: its
affinity (a real ``sched_setaffinity`` in a child process), a real cgroup CPU quota on
this machine (v1 or v2, whichever it has), and both cgroup layouts as files."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from simulations.process import cgroup_cpu_quota, usable_cpus

ROOT = Path(__file__).resolve().parents[2]
PRINT = "from simulations.process import usable_cpus; print(usable_cpus())"


def child_cpus(preexec=None) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, capture_output=True, text=True, preexec_fn=preexec, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_process_pinned_to_one_cpu_uses_one():
    assert child_cpus() == len(os.sched_getaffinity(0))
    assert child_cpus(lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) == 1


CGROUP = Path("/sys/fs/cgroup")


def quota_group(quota: int | None) -> tuple[Path, Path]:
    """A new cgroup with this CPU quota (per 100 ms; ``None``: none), on whichever
    layout the machine has, and the file a process joins it through."""
    name = f"montecarlo-test-{uuid.uuid4().hex[:8]}"
    if (CGROUP / "cgroup.controllers").exists():  # v2: the cpu controller must be on below the root
        (CGROUP / "cgroup.subtree_control").write_text("+cpu")
        group = CGROUP / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota if quota is not None else 'max'} 100000")
    else:  # v1
        group = CGROUP / "cpu" / name
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(quota if quota is not None else -1))
    return group, group / "cgroup.procs"


@pytest.mark.parametrize("quota, expected", [(50_000, 1), (150_000, 1), (None, None)])
def test_a_process_in_a_cgroup_with_a_cpu_quota_uses_no_more(quota, expected):
    group, procs = quota_group(quota)
    try:
        got = child_cpus(lambda: procs.write_text(str(os.getpid())))
        assert got == (expected or len(os.sched_getaffinity(0)))
    finally:
        group.rmdir()


def test_both_cgroup_layouts_as_files(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "pod").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory")
    (v2 / "pod" / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "self-v2").write_text("0::/pod\n")
    assert cgroup_cpu_quota(str(v2), str(tmp_path / "self-v2")) == 2.5
    (v2 / "pod" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(str(v2), str(tmp_path / "self-v2")) is None
    # in a container the process's own cgroup is mounted as the root
    (tmp_path / "self-host-path").write_text("0::/kubepods/burstable/pod-1/abc\n")
    (v2 / "cpu.max").write_text("100000 100000\n")
    assert cgroup_cpu_quota(str(v2), str(tmp_path / "self-host-path")) == 1.0

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "c1").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_quota_us").write_text("50000")
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_period_us").write_text("100000")
    (tmp_path / "self-v1").write_text("4:memory:/docker/c1\n3:cpu,cpuacct:/docker/c1\n")
    assert cgroup_cpu_quota(str(v1), str(tmp_path / "self-v1")) == 0.5
    assert usable_cpus(str(v1), str(tmp_path / "self-v1")) == 1
    assert cgroup_cpu_quota(str(tmp_path / "none"), str(tmp_path / "missing")) is None
