"""A throwaway Ray cluster on loopback (a head and N worker nodes via ``ray start``), for tests,
benchmarks and trying ``--ray`` on one machine.

Everything it starts listens on 127.0.0.1 only, and it stops exactly what it started:

* **Loopback.** ``ray start --node-ip-address=127.0.0.1`` is not enough: Ray replaces a
  loopback node address with the machine's external interface address (so other
  machines could join), and then the GCS, the raylets, the agents and the Ray client
  server all listen there. With ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (:data:`LOOPBACK_ENV`)
  Ray keeps 127.0.0.1 as the node address and binds its servers to it; drivers connecting
  to a loopback address need the same (:func:`pin_loopback`). Ray refuses to start a
  *worker* node in that mode, so worker nodes are started through this module
  (``python -m pixelsmith.jobs.ray_local start ...``), which runs ``ray start`` with the
  node address held at 127.0.0.1.
* **Fixed ports.** Ray's client server (10001), dashboard agent (52365) and metrics
  ports default to fixed numbers; a leftover from an earlier run then breaks the next
  one. Each gets a free port here.
* **Teardown by process group.** ``ray start`` exits after spawning the node's
  processes, which are re-parented to init; some (the Ray client server) carry nothing
  in their command line that names this cluster. Each ``ray start`` runs in its own
  session, so its process group holds every process of that node; :meth:`LocalCluster.stop`
  signals those groups (and anything naming the cluster's temp dir) and waits until they
  are gone. Other Ray clusters on the machine are never touched (no ``ray stop``).
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any

# Ray reads this when it is imported: "0" keeps 127.0.0.1 as the node address (and binds there).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
CLUSTER_ENV = "PIXELSMITH_RAY_CLUSTER"  # set in every process of a LocalCluster: its temp dir
KEEP_TEMP_ENV = "PIXELSMITH_RAY_KEEP_TEMP"  # set: stop() leaves the cluster's temp dir (its logs) in place


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a live process."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(e.name) for e in pathlib.Path("/proc").iterdir() if e.name.isdigit()]


def cluster_pids(marker: str, groups: Iterable[int] = ()) -> set[int]:
    """Live processes of a cluster: those whose command line or ``PIXELSMITH_RAY_CLUSTER`` names
    ``marker`` (its temp dir), those in one of its process ``groups``, and all their descendants."""
    groups = set(groups)
    tree: dict[int, list[int]] = {}
    roots = set()
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is None or stat[0] == "Z":  # gone, or a zombie waiting for init to reap it
            continue
        tree.setdefault(stat[1], []).append(pid)
        if stat[2] in groups or marker in _cmdline(pid) or _environ(pid).get(CLUSTER_ENV) == marker:
            roots.add(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found


def is_ray_process(pid: int) -> bool:
    """A Ray process by its command line: its binaries, Python helpers and ``ray::`` workers."""
    cmd = _cmdline(pid)
    return cmd.startswith("ray::") or "site-packages/ray/" in cmd or "ray.util.client.server" in cmd


def ray_pids() -> set[int]:
    return {pid for pid in _all_pids() if (_stat(pid) or ("Z",))[0] != "Z" and is_ray_process(pid)}


def listening(pids: Iterable[int]) -> list[tuple[int, str, int]]:
    """The TCP sockets these processes listen on: (pid, address, port), read from /proc."""
    owner: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owner[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = pathlib.Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A" or fields[9] not in owner:  # 0A: LISTEN
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)
            # /proc prints each 32-bit word in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((owner[fields[9]], str(ipaddress.ip_address(packed)), int(hex_port, 16)))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def pin_loopback(address: str | None) -> None:
    """Before connecting to (or starting) Ray: keep a loopback or in-process cluster on loopback.

    Ray would otherwise turn ``127.0.0.1:PORT`` into the machine's external address and fail to
    reach a GCS listening on loopback, and an in-process cluster (``None``/``"local"``) would listen
    on every interface. Other addresses are left alone."""
    host = None if address in (None, "local") else address.rsplit(":", 1)[0].strip("[]")
    if host not in (None, "localhost") and not _is_loopback_host(host):
        return
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray was imported before the variable was set: tell it too
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def _is_loopback_host(host: str | None) -> bool:
    try:
        return host is not None and is_loopback(host)
    except ValueError:
        return False


class LocalCluster:
    def __init__(self, worker_nodes: int = 1, cpus_per_node: int = 1):
        self.worker_nodes, self.cpus = worker_nodes, cpus_per_node
        self.temp = tempfile.mkdtemp(prefix="psray-", dir="/tmp")  # short: Ray's socket paths are length-limited
        self.address = f"127.0.0.1:{_free_port()}"
        self.env = {
            **os.environ,
            **LOOPBACK_ENV,
            CLUSTER_ENV: self.temp,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "disabled",
            "AUTOSCALER_METRIC_PORT": str(_free_port()),
            "DASHBOARD_METRIC_PORT": str(_free_port()),
            # a raylet gives its agents this long to register; on a busy machine (CI, shared cores) their
            # Python start-up takes longer than the default
            "RAY_agent_register_timeout_ms": os.environ.get("RAY_agent_register_timeout_ms", "120000"),
        }
        self.groups: list[int] = []  # one process group per `ray start`: every process of that node

    def _ray_start(self, args: list[str], timeout: float) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixelsmith.jobs.ray_local", "start", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, which the node's processes inherit
        )
        self.groups.append(proc.pid)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        if proc.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{output.decode(errors='replace')[-4000:]}")

    def _node_args(self) -> list[str]:
        """Per node: free ports for what Ray would put on fixed ones, and for its agents (a raylet
        given its agents' ports does not wait, with a 15 s limit, for them to write port files)."""
        return [
            f"--num-cpus={self.cpus}",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
        ]

    def start(self, timeout: float = 120) -> LocalCluster:
        port = self.address.rsplit(":", 1)[1]
        head = ["--head", f"--port={port}", "--include-dashboard=false", f"--ray-client-server-port={_free_port()}"]
        self._ray_start([*head, *self._node_args()], timeout)
        for _ in range(self.worker_nodes):
            self._ray_start([f"--address={self.address}", *self._node_args()], timeout)
        return self

    def pids(self) -> set[int]:
        return cluster_pids(self.temp, self.groups)

    def listening(self) -> list[tuple[int, str, int]]:
        """(pid, address, port) of every socket the cluster's processes listen on."""
        return listening(self.pids())

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after a grace period, to every process of the cluster; waits until
        none is left (zombies aside: init reaps them)."""
        deadline = time.monotonic() + timeout
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, timeout)):
            pids = self.pids()
            for group in self.groups:
                try:
                    os.killpg(group, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            until = min(deadline, time.monotonic() + grace)
            while self.pids() and time.monotonic() < until:
                time.sleep(0.2)
            if not self.pids():
                break
        if os.environ.get(KEEP_TEMP_ENV):  # the session logs, for a failure to be read afterwards
            print(f"Ray logs kept in {self.temp}", file=sys.stderr)
        else:
            shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _ray_start_on_loopback(argv: list[str]) -> None:
    """``ray start`` with the node address held at 127.0.0.1 (worker nodes included)."""
    from ray._private import ray_constants, services
    from ray.scripts.scripts import main

    # The multi-node check reads this; the node address comes from the override below instead.
    ray_constants.ENABLE_RAY_CLUSTER = True
    services.get_node_ip_address = lambda address=None: "127.0.0.1"
    sys.argv = ["ray", *argv]
    main()


if __name__ == "__main__":  # python -m pixelsmith.jobs.ray_local start ARGS...: see LocalCluster
    _ray_start_on_loopback(sys.argv[1:])
