"""A throwaway Ray cluster on loopback (a head and N worker nodes via ``ray start``), for
benchmarks and trying ``--ray`` on one machine. Torn down by process id: only this
cluster's processes are stopped, never other Ray clusters on the machine (no ``ray stop``)."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cluster_pids(marker: str) -> set[int]:
    """Processes whose command line names ``marker`` (our temp dir), and all their descendants."""
    tree: dict[int, list[int]] = {}
    roots = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(pid)
        if marker in _cmdline(pid):
            roots.add(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found


class LocalCluster:
    def __init__(self, worker_nodes: int = 1, cpus_per_node: int = 1):
        self.worker_nodes, self.cpus = worker_nodes, cpus_per_node
        self.temp = tempfile.mkdtemp(prefix="psray-", dir="/tmp")  # short: Ray's socket paths are length-limited
        self.address = f"127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.ray = str(pathlib.Path(sys.executable).parent / "ray")

    def start(self, timeout: float = 120) -> LocalCluster:
        common = [f"--num-cpus={self.cpus}", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
        port = self.address.rsplit(":", 1)[1]
        subprocess.run(
            [
                self.ray,
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={self.temp}",
                *common,
            ],
            check=True,
            env=self.env,
            timeout=timeout,
            capture_output=True,
        )
        for _ in range(self.worker_nodes):
            subprocess.run(
                [self.ray, "start", f"--address={self.address}", *common],
                check=True,
                env=self.env,
                timeout=timeout,
                capture_output=True,
            )
        return self

    def pids(self) -> set[int]:
        return cluster_pids(self.temp)

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(1.5)
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
