"""Throughput with wrk: a C load generator, so the client takes little of the two cores.

wrk keeps `connections` requests in flight on one thread; a generated Lua script gives each
request a unique prompt from the same mix as the c=1 client (no system may serve the bench from
a cache), sends the bearer key, and prints one machine-readable line at the end. With a request
limit, the script announces when it is reached and the bench interrupts wrk, which then reports
as if its duration had run out.
"""

from __future__ import annotations

import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.client import HOST, PROMPTS, Target

RESULT = "WRK_RESULT"
LIMIT_REACHED = "WRK_LIMIT_REACHED"
_SAFE = re.compile(r"^[A-Za-z0-9._/:@+-]+$")

_LUA = """
local counter = 0
local responses = 0
local limit = {limit}
local bodies = {{
{bodies}
}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
request = function()
  counter = counter + 1
  local body = string.format(bodies[counter % #bodies + 1], counter)
  return wrk.format(nil, "{path}", nil, body)
end
{response}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{result} %d %d %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

_LUA_RESPONSE = """
response = function(status, headers, body)
  responses = responses + 1
  if responses == limit then
    io.write("{marker}\\n")
    io.flush()
    wrk.thread:stop()
  end
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def combined(windows: Sequence[LoadResult]) -> LoadResult:
    """Windows of one load as one figure: throughput over all of them, latency percentiles the
    median window's, so that one window's stall of a few hundred milliseconds does not decide
    the figure on its own."""
    return LoadResult(
        requests=sum(w.requests for w in windows),
        seconds=sum(w.seconds for w in windows),
        errors=sum(w.errors for w in windows),
        p50_ms=statistics.median(w.p50_ms for w in windows),
        p99_ms=statistics.median(w.p99_ms for w in windows),
    )


def _script(target: Target, limit: int | None) -> str:
    for value in (target.model, target.api_key, target.path, target.run_tag):
        if not _SAFE.match(value):
            raise ValueError(f"refusing to inline {value!r} into the wrk script")
    bodies = [target.body_template(i).decode() for i in range(len(PROMPTS))]
    if any("]==]" in b or b.count("%") != 1 for b in bodies):
        raise ValueError("a prompt cannot be inlined into the wrk script")
    return _LUA.format(
        limit=limit or 0,
        key=target.api_key,
        path=target.path,
        bodies=",\n".join(f"  [==[{b}]==]" for b in bodies),
        result=RESULT,
        response=_LUA_RESPONSE.format(marker=LIMIT_REACHED) if limit else "",
    )


def _parse(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith(RESULT):
            n, dur_us, *errs, p50, p99 = (int(x) for x in line.split()[1:])
            return LoadResult(n, dur_us / 1e6, sum(errs), p50 / 1000.0, p99 / 1000.0)
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


def run_wrk(
    target: Target,
    connections: int,
    seconds: float,
    *,
    limit: int | None = None,
    cpus: str | None = None,
) -> LoadResult:
    """Load `target` with `connections` in flight for `seconds` (or until `limit` responses)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_script(target, limit))
        script = Path(fh.name)
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://{HOST}:{target.port}{target.path}",
    ]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    try:
        return _parse(_run(argv, seconds + 60))
    finally:
        script.unlink(missing_ok=True)


def _run(argv: list[str], timeout: float) -> str:
    """Run wrk, interrupting it once the script says its request limit is reached."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(LIMIT_REACHED):
                time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
        proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(lines)
