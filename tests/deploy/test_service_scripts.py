"""The local service scripts recover from what a busy machine does to them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Its own six ports (bus ports +10000), below the ephemeral range like the suite's.
PORTS = [22101, 22102, 22103, 22104, 22105, 22106]


def test_a_cluster_node_down_at_creation_is_started_again(tmp_path: Path) -> None:
    """A node that died between its start and the cluster's creation is named in the log,
    started again, and the cluster forms with a replica for every master."""
    env = {**os.environ, "MC_VAR_DIR": str(tmp_path), "MC_CLUSTER_PORTS": " ".join(map(str, PORTS))}
    # `set -- true` makes the sourced script's dispatch line a no-op, so its functions can
    # be driven one by one: start every node, stop one, then create.
    script = f"""
      set -- true
      source redis-cluster.sh
      for p in "${{PORTS[@]}}"; do start_node "$p"; done
      redis-cli -p {PORTS[1]} shutdown nosave
      create
      wait_for "redis cluster" 60 cluster_ok
      wait_for "cluster replicas" 60 replicas_ok
      redis-cli -p {PORTS[0]} cluster nodes
    """
    try:
        done = subprocess.run(
            ["bash", "-c", script], cwd=ROOT / "deploy", env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        assert f"node {PORTS[1]} is down (attempt 1)" in done.stderr
        nodes = [line.split() for line in done.stdout.splitlines() if line.strip()]
        assert sorted(int(n[1].split(":")[1].split("@")[0]) for n in nodes) == PORTS
        roles = [n[2].replace("myself,", "") for n in nodes]
        assert roles.count("master") == 3 and roles.count("slave") == 3
    finally:
        subprocess.run(["bash", "redis-cluster.sh", "stop"], cwd=ROOT / "deploy", env=env, capture_output=True)
