"""Start, wait for, measure and stop the servers under test.

Every server runs in its own session (process group), so stopping it also stops whatever it
forked (LiteLLM's CLI runs uvicorn in a child process). `Servers` stops everything it started
when its block exits, however it exits, so an interrupted bench leaves nothing listening.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.client import HOST

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


class StartError(RuntimeError):
    """A server exited or never became ready; the message carries the tail of its log."""


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The server and all its descendants."""
        return _tree(self.proc.pid)

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its descendants."""
        return sum(_rss(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its descendants have used so far."""
        return sum(_cpu_seconds(pid) for pid in self.pids())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _get_status(port: int, path: str, headers: Mapping[str, str]) -> int | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path, headers=dict(headers))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()


class Servers(contextlib.AbstractContextManager["Servers"]):
    """The servers of one bench run; all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._started: list[Server] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        env: Mapping[str, str] | None = None,
        cpus: str | None = None,
        cwd: Path | None = None,
    ) -> Server:
        log = self._log_dir / f"{name.lower().replace(' ', '-')}.log"
        command = ["taskset", "-c", cpus, *argv] if cpus is not None else list(argv)
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                command,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        server = Server(name, port, proc, log)
        self._started.append(server)
        return server

    def wait_ready(
        self,
        server: Server,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        """Poll `path` until it answers 200; fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise StartError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
                )
            if _get_status(server.port, path, headers or {}) == 200:
                return
            time.sleep(0.25)
        raise StartError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")

    def pids(self) -> list[int]:
        """Every process of every server still running."""
        return [pid for server in self._started for pid in server.pids()]

    def stop(self, server: Server) -> None:
        """SIGTERM to the whole group, SIGKILL after ten seconds."""
        if server in self._started:
            self._started.remove(server)
        if server.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in reversed(list(self._started)):
            self.stop(server)


@dataclass(frozen=True)
class CpuSnapshot:
    busy: float
    total: float
    ours: float


class CpuMeter:
    """Tells how much of the machine other work took while a column was measured.

    The machine is shared: a test suite or a build that starts mid-run takes cycles from the
    system under test and skews that column only. Busy CPU time from /proc/stat, less the CPU
    time of this process, its reaped children (every server it stopped, every wrk) and the
    servers still running, is what others used.
    """

    def __init__(self, live: Callable[[], Sequence[int]]) -> None:
        self._live = live

    def snapshot(self) -> CpuSnapshot:
        busy, total = _machine_cpu()
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        ours += sum(_cpu_seconds(pid) for pid in self._live())
        return CpuSnapshot(busy, total, ours)

    def others_share(self, since: CpuSnapshot) -> float:
        now = self.snapshot()
        others = (now.busy - since.busy) - (now.ours - since.ours)
        return max(0.0, others / max(1e-9, now.total - since.total))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of all CPUs since boot (idle and iowait count as not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICK, sum(values) / TICK


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs in use over `seconds`: unlike the load average it does not remember a
    bench that ended a minute ago, and it sees another job that is running now."""
    busy0, total0 = _machine_cpu()
    time.sleep(seconds)
    busy1, total1 = _machine_cpu()
    return (busy1 - busy0) / max(1e-9, total1 - total0)
