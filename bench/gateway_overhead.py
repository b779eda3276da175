"""Gateway overhead: what Lockgate adds to a request, next to a Python floor and LiteLLM.

One mock upstream (latency 0) serves five columns in one run: the mock itself (the baseline
every "added" figure subtracts), a ~40-line aiohttp pass-through (the least a Python proxy can
cost), LiteLLM's proxy (the reference peer), Lockgate relaying (caching and the injection guard
off) and Lockgate with every feature in its default state. Each system has one worker, pinned
to one core while the mock and the load generators share the other, and is measured the same
way: c=1 latency, c=1 streaming first chunk, wrk throughput at c=16 and c=64. The systems take
each measurement in turns (see `measure_in_turns`), so the machine's slow spells fall on all of
them; Lockgate then serves a long run (50,000 requests by default) to show whether its memory
grows.

    .venv/bin/python -m bench.gateway_overhead [--requests 50000] [--seconds 5] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from bench.client import PROMPTS, Target, probe, sample_latency
from bench.load import combined, run_wrk
from bench.procs import CpuMeter, Server, Servers, StartError, cpu_busy, free_port
from bench.profile_summary import summarize
from bench.report import (
    DIRECT,
    LITELLM,
    LOCKGATE,
    LOCKGATE_DEFAULTS,
    PASSTHROUGH,
    MemoryResult,
    Run,
    SystemResult,
    Targets,
    percentile,
    ratios,
    table,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LITELLM_BIN = ROOT / ".bench-venv" / "litellm" / "bin" / "litellm"
PYSPY_BIN = ROOT / ".bench-venv" / "tools" / "bin" / "py-spy"
RESULTS = BENCH / "results"
MOCK_KEY, LITELLM_KEY, LOCKGATE_KEY = "bench", "sk-bench", "lg-bench-key"
MOCK_TOKENS = 16
BUSY_SHARE = 0.15  # CPU use by others at start above which the figures get a warning

POLICY = """\
providers:
  mock:
    kind: openai
    base_url: http://127.0.0.1:{mock_port}/v1
    api_key: {mock_key}
models:
  mock:
    targets: [mock/gpt-bench]
tiers: {{simple: mock, medium: mock, complex: mock}}
{features}"""
RELAY_ONLY = """\
cache: {enabled: false}  # routing and relaying only: caching and safety have benches of their own
safety: {injection_action: "off"}
"""


@dataclass(frozen=True)
class Cpus:
    """Where things run: the system under test alone on one core, everything else on the other,
    so the proxy's single worker gets a whole core, as it would in production."""

    server: str | None
    load: str | None


@dataclass
class Context:
    args: argparse.Namespace
    servers: Servers
    workdir: Path
    cpus: Cpus
    meter: CpuMeter
    mock: Server | None = None

    @property
    def mock_port(self) -> int:
        assert self.mock is not None, "the mock starts first"
        return self.mock.port


Launch = Callable[[Context, int], tuple[list[str], dict[str, str]]]
T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class System:
    key: str  # for --only
    name: str
    model: str
    api_key: str
    health: str
    launch: Launch | None  # None: the mock itself, already running
    long_run: bool = False  # the memory run and, with --profile, a py-spy sample


def _mock_argv(ctx: Context, port: int) -> list[str]:
    prefix = shlex.split(ctx.args.mock_command) if ctx.args.mock_command else None
    prefix = prefix or [sys.executable, "-m", "lockgate.cli", "mock-upstream"]
    return [
        *prefix,
        "--port",
        str(port),
        "--latency-ms",
        "0",
        "--ttft-ms",
        "0",
        "--tokens-per-second",
        str(ctx.args.mock_tokens_per_second),
        "--tokens",
        str(MOCK_TOKENS),
    ]


def _launch_passthrough(ctx: Context, port: int) -> tuple[list[str], dict[str, str]]:
    upstream = f"http://127.0.0.1:{ctx.mock_port}"
    return [
        sys.executable,
        str(BENCH / "passthrough.py"),
        "--port",
        str(port),
        "--upstream",
        upstream,
    ], {}


def _launch_litellm(ctx: Context, port: int) -> tuple[list[str], dict[str, str]]:
    argv = [
        str(LITELLM_BIN),
        "--config",
        str(BENCH / "litellm_config.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]
    env = {
        "BENCH_MOCK_BASE": f"http://127.0.0.1:{ctx.mock_port}/v1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "DO_NOT_TRACK": "1",
    }
    return argv, env


def _lockgate(features: str, name: str) -> Launch:
    """Lockgate on the policy above, in a data dir of its own."""

    def launch(ctx: Context, port: int) -> tuple[list[str], dict[str, str]]:
        policy = ctx.workdir / f"{name}.yaml"
        policy.write_text(
            POLICY.format(mock_port=ctx.mock_port, mock_key=MOCK_KEY, features=features)
        )
        data = ctx.workdir / name
        data.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "lockgate.cli", "serve", "--config", str(policy)]
        env = {"LOCKGATE_API_KEY": LOCKGATE_KEY, "LOCKGATE_DATA_DIR": str(data)}
        return [*argv, "--port", str(port)], env

    return launch


SYSTEMS = (
    System("direct", DIRECT, "gpt-bench", MOCK_KEY, "/v1/models", None),
    System("passthrough", PASSTHROUGH, "gpt-bench", MOCK_KEY, "/v1/models", _launch_passthrough),
    System(
        "lockgate",
        LOCKGATE,
        "mock",
        LOCKGATE_KEY,
        "/health",
        _lockgate(RELAY_ONLY, "lockgate"),
        long_run=True,
    ),
    System(
        "defaults", LOCKGATE_DEFAULTS, "mock", LOCKGATE_KEY, "/health", _lockgate("", "defaults")
    ),
    System("litellm", LITELLM, "mock", LITELLM_KEY, "/health/liveliness", _launch_litellm),
)
"""The columns. All but LiteLLM run side by side and are measured in turns; LiteLLM runs alone
and last: after it exits, the machine ran every server slower for a while (the floor's CPU per
request went from 0.20 to 0.49 ms right after it), which would be charged to the others."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="each measurement (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="before each measurement")
    p.add_argument("--windows", type=int, default=3, help="measurements per system under load")
    p.add_argument("--requests", type=int, default=50_000, help="Lockgate long run for memory")
    p.add_argument("--long-run-budget", type=float, default=300.0, help="seconds, at most")
    p.add_argument("--rss-tolerance-mb", type=float, default=5.0)
    p.add_argument("--only", nargs="+", choices=[s.key for s in SYSTEMS], help="columns to run")
    p.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (no install)")
    p.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    p.add_argument("--profile", action="store_true", help="py-spy Lockgate under c=64 load")
    p.add_argument("--mock-command", help="command prefix for the mock (default: lockgate's)")
    p.add_argument("--mock-tokens-per-second", type=float, default=0.0, help="0: no pacing")
    p.add_argument("--out", type=Path, default=RESULTS / "gateway_overhead.md")
    return p.parse_args(argv)


def ensure_tools(args: argparse.Namespace) -> None:
    """wrk, LiteLLM (and py-spy) are the bench's own tools: installed on first use."""
    need = not LITELLM_BIN.exists() and not args.no_litellm
    need_profiler = args.profile and not PYSPY_BIN.exists()
    if need or need_profiler or not _have("wrk"):
        cmd = ["bash", str(BENCH / "setup_litellm.sh"), *(["--profiler"] if args.profile else [])]
        if subprocess.run(cmd, check=False).returncode != 0:
            _log("tool setup failed; the columns that need the missing tools will say so")


def _have(tool: str) -> bool:
    return any((Path(d) / tool).exists() for d in os.environ.get("PATH", "").split(":"))


def choose_cpus(args: argparse.Namespace) -> Cpus:
    if args.no_pin or (os.cpu_count() or 1) < 2 or not _have("taskset"):
        return Cpus(None, None)
    os.sched_setaffinity(0, {1})  # the c=1 client runs in this process
    return Cpus("0", "1")


def start_server(ctx: Context, system: System) -> Server:
    assert system.launch is not None
    port = free_port()
    argv, env = system.launch(ctx, port)
    server = ctx.servers.start(system.name, argv, port, env=env, cpus=ctx.cpus.server, cwd=ROOT)
    headers = {"Authorization": f"Bearer {system.api_key}"}
    ctx.servers.wait_ready(server, system.health, headers=headers)
    return server


@dataclass
class Column:
    """One system being measured: its server and what it has measured so far."""

    system: System
    server: Server
    result: SystemResult
    target: Target
    samples: dict[bool, list[float]] = field(default_factory=lambda: {False: [], True: []})
    by_prompt: dict[str, list[float]] = field(default_factory=dict)
    tally: Counter[str] = field(default_factory=Counter)
    c1_cpu_s: float = 0.0
    load_cpu_s: dict[int, float] = field(default_factory=dict)

    def fresh(self) -> Target:
        """The target with a new run tag: every prompt of the run unique, so a column with
        caching on pays for a miss on each one, warm-ups and earlier windows included."""
        return replace(self.target, run_tag=uuid.uuid4().hex[:8])


def measure_in_turns(ctx: Context, columns: list[Column]) -> None:
    """The same sequence for every system, taken in turns: c=1 latency and first chunk in
    `ROUNDS` slices per system, each load window once per system, one system after another
    before the next slice or window starts. A slow spell of the machine (they last seconds to
    minutes here) then falls on every column alike instead of on whichever ran at the time.
    A column that fails is dropped from the later turns with its error noted."""
    args = ctx.args
    before = ctx.meter.snapshot()
    for col in columns:
        _step(col, _check, col)
    for stream in (False, True):
        warmup = args.warmup if not stream else args.warmup / 2
        for col in _alive(columns):
            _step(col, sample_latency, col.fresh(), warmup, stream=stream)
        for _ in range(ROUNDS):
            for col in _alive(columns):
                _step(col, _latency_slice, ctx, col, stream)
    for connections in (16, 64):
        for col in _alive(columns):
            _step(col, _load, ctx, col, connections, args.warmup, keep=False)
        for _ in range(max(1, args.windows)):
            for col in _alive(columns):
                _step(col, _load, ctx, col, connections, args.seconds)
    others = ctx.meter.others_share(before)
    for col in _alive(columns):
        _summarize(col, others)


ROUNDS = 5
"""Slices of the c=1 and first-chunk samples, each system taking one slice in turn."""


def _alive(columns: list[Column]) -> list[Column]:
    return [col for col in columns if col.result.error is None]


def _step(col: Column, step: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    try:
        step(*args, **kwargs)
    except (OSError, RuntimeError) as exc:
        _log(f"{col.system.name}: not measured: {exc}")
        col.result.error = str(exc)


def _check(col: Column) -> None:
    """One plain and one streaming request must succeed; the plain one's headers are kept."""
    reply = probe(col.fresh(), stream=False)
    probe(col.fresh(), stream=True)
    col.result.headers = {
        k: v for k, v in reply.headers.items() if k.startswith("x-lockgate") and k != "x-request-id"
    }


def _latency_slice(ctx: Context, col: Column, stream: bool) -> None:
    cpu = col.server.cpu_seconds()
    samples = sample_latency(
        col.fresh(), ctx.args.seconds / ROUNDS, stream=stream, tally=None if stream else col.tally
    )
    col.samples[stream] += samples
    if not stream:
        col.c1_cpu_s += col.server.cpu_seconds() - cpu
        for prompt, values in _by_prompt(samples).items():
            col.by_prompt.setdefault(prompt, []).extend(values)


def _load(ctx: Context, col: Column, connections: int, seconds: float, keep: bool = True) -> None:
    cpu = col.server.cpu_seconds()
    load = run_wrk(col.fresh(), connections, seconds, cpus=ctx.cpus.load)
    if keep:
        col.result.windows.setdefault(connections, []).append(load)
        col.load_cpu_s[connections] = (
            col.load_cpu_s.get(connections, 0.0) + col.server.cpu_seconds() - cpu
        )


def _summarize(col: Column, others: float) -> None:
    result, c1 = col.result, col.samples[False]
    if "absent" not in col.tally:
        result.cache_answers = dict(col.tally)
    result.c1_p50, result.c1_p99 = percentile(c1, 50), percentile(c1, 99)
    result.c1_cpu_ms_per_request = col.c1_cpu_s * 1000 / len(c1) if c1 else None
    result.c1_by_prompt = {p: percentile(v, 50) for p, v in col.by_prompt.items()}
    result.ttft_p50 = percentile(col.samples[True], 50)
    for connections, windows in result.windows.items():
        result.load[connections] = load = combined(windows)
        result.errors += load.errors
    heavy = result.load.get(64)
    if heavy and heavy.requests:
        result.cpu_ms_per_request = col.load_cpu_s[64] * 1000 / heavy.requests
    result.rss_after_load = col.server.rss_bytes()
    result.others_cpu = others
    _log(
        f"{result.name}: c=1 p50 {result.c1_p50:.2f} ms, first chunk {result.ttft_p50:.2f} ms, "
        f"c=64 {heavy.rps if heavy else 0:,.0f} req/s"
    )


def _by_prompt(samples: list[float]) -> dict[str, list[float]]:
    """Samples per prompt of the mix; sample i is request i + 1, which used prompt (i + 1) % n."""
    groups: dict[str, list[float]] = {}
    for i, ms in enumerate(samples):
        groups.setdefault(PROMPTS[(i + 1) % len(PROMPTS)], []).append(ms)
    return groups


def long_run(ctx: Context, system: System, server: Server) -> MemoryResult:
    """RSS after a warm-up, then after each fifth of `--requests` at c=16."""
    args = ctx.args
    target = Target(system.name, server.port, system.model, system.api_key)
    before = ctx.meter.snapshot()
    deadline = time.monotonic() + args.long_run_budget
    warm_n = max(1000, args.requests // 10)
    warm = run_wrk(target, 16, args.long_run_budget / 4, limit=warm_n, cpus=ctx.cpus.load)
    samples, served, errors = [(0, server.rss_bytes())], 0, warm.errors
    slice_size = max(1, args.requests // 5)
    while served < args.requests and (left := deadline - time.monotonic()) > 1:
        n = min(slice_size, args.requests - served)
        load = run_wrk(target, 16, left, limit=n, cpus=ctx.cpus.load)
        served, errors = served + load.requests, errors + load.errors
        samples.append((served, server.rss_bytes()))
        _log(f"{system.name}: long run {served:,}/{args.requests:,}, RSS {samples[-1][1] >> 20} MB")
    return MemoryResult(samples, errors, ctx.meter.others_share(before))


def profile(ctx: Context, system: System, server: Server) -> str:
    """Sample a Lockgate column with py-spy under c=64 load; the hot frames say where time goes."""
    out = RESULTS / f"{system.key}_profile.txt"
    seconds = max(3, round(ctx.args.seconds))
    pin = ["taskset", "-c", ctx.cpus.load] if ctx.cpus.load is not None else []
    spy = subprocess.Popen(
        [
            *pin,
            str(PYSPY_BIN),
            "record",
            "--pid",
            str(server.proc.pid),
            "--subprocesses",
            "--full-filenames",
            "--nolineno",
            "--nonblocking",
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    target = Target(system.name, server.port, system.model, system.api_key)
    try:
        run_wrk(target, 64, seconds + 1, cpus=ctx.cpus.load)
        spy.wait(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    return summarize(out)


def run_columns(
    ctx: Context, systems: list[System]
) -> tuple[list[SystemResult], MemoryResult | None, dict[str, str]]:
    """Start the systems side by side (an idle one costs the others nothing), measure them in
    turns, give the long run and profile to the ones that take them, stop them all. A system
    that does not start or fails becomes a note, not a crash of the run."""
    columns: list[Column] = []
    results: list[SystemResult] = []
    memory: MemoryResult | None = None
    hot: dict[str, str] = {}
    started: list[Server] = []
    try:
        for system in systems:
            try:
                server = start_server(ctx, system) if system.launch else _mock_server(ctx)
            except (StartError, OSError, RuntimeError) as exc:
                _log(f"{system.name}: not started: {exc}")
                results.append(SystemResult(system.name, error=str(exc)))
                continue
            if system.launch is not None:
                started.append(server)
            target = Target(system.name, server.port, system.model, system.api_key)
            columns.append(Column(system, server, SystemResult(system.name), target))
        measure_in_turns(ctx, columns)
        for col in _alive(columns):
            if col.system.long_run:
                memory = _extra(
                    col.result, "long run", partial(long_run, ctx, col.system, col.server)
                )
                if ctx.args.profile:
                    prof = _extra(
                        col.result, "profile", partial(profile, ctx, col.system, col.server)
                    )
                    if prof:
                        hot[col.system.name] = prof
    finally:
        for server in started:
            ctx.servers.stop(server)
    return results + [col.result for col in columns], memory, hot


def _extra(result: SystemResult, what: str, step: Callable[[], T]) -> T | None:
    """A step after the main figures; its failure is noted without losing those figures."""
    try:
        return step()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _log(f"{result.name}: {what} failed: {exc}")
        result.notes.append(f"{what} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        return None


def _mock_server(ctx: Context) -> Server:
    assert ctx.mock is not None
    return ctx.mock


def start_mock(ctx: Context) -> Server:
    """The one upstream every column talks to; it shares the load generators' core."""
    port = free_port()
    server = ctx.servers.start("mock", _mock_argv(ctx, port), port, cpus=ctx.cpus.load, cwd=ROOT)
    headers = {"Authorization": f"Bearer {MOCK_KEY}"}
    ctx.servers.wait_ready(server, "/v1/models", headers=headers, timeout=60)
    return server


def selected(args: argparse.Namespace) -> list[System]:
    """The columns to run; the direct mock always runs, every "added" figure needs it."""
    keys = set(args.only or [s.key for s in SYSTEMS]) | {"direct"}
    if args.no_litellm:
        keys.discard("litellm")
    return [s for s in SYSTEMS if s.key in keys]


def environment(args: argparse.Namespace, cpus: Cpus) -> list[str]:
    """What a reader needs to judge the figures: machine, load, placement, durations, versions."""
    pinning = (
        f"system under test on CPU {cpus.server}; mock, wrk and the c=1 client on CPU {cpus.load}"
        if cpus.server is not None
        else "none (scheduler's choice)"
    )
    busy = cpu_busy()
    warning = [
        f"> **Other work used {busy:.0%} of the CPUs when this run started: "
        "expect noisy figures.**",
        "",
    ]
    return [
        *(warning if busy > BUSY_SHARE else []),
        f"- run: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, commit {_git_head()}",
        f"- machine: {os.cpu_count()} CPUs, {_cpu_model()}; CPUs busy at start {busy:.0%}, "
        f"load average {os.getloadavg()[0]:.2f}",
        f"- python {platform.python_version()}; LiteLLM {_litellm_version()}; "
        "one worker per system",
        f"- mock upstream: latency 0, {MOCK_TOKENS} tokens, unpaced streams; "
        f"CPU pinning: {pinning}",
        f"- each figure: {args.seconds:g} s after a {args.warmup:g} s warm-up; c=1 with a "
        "raw-socket keep-alive client, c=16/c=64 with wrk (1 thread) in "
        f"{max(1, args.windows)} windows per system (req/s over all of them, p99 the median "
        "window's); columns measured in turns; every prompt unique",
    ]


def _git_head() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _litellm_version() -> str:
    found = sorted(LITELLM_BIN.parent.parent.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removeprefix("litellm-").removesuffix(".dist-info") if found else "n/a"


def render(run: Run, header: list[str], hot: dict[str, str]) -> str:
    parts = ["# Lockgate gateway overhead", "", *header, "", table(run), "", "## Ratios", ""]
    parts.append(ratios(run))
    for name, summary in hot.items():
        parts += ["", f"## Where the time goes: {name} (py-spy, c=64)", "", summary]
    return "\n".join(parts) + "\n"


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every server the bench started."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    ensure_tools(args)
    cpus = choose_cpus(args)
    header = environment(args, cpus)
    results: dict[str, SystemResult] = {}
    memory: MemoryResult | None = None
    hot: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp,
        Servers(Path(tmp)) as servers,
    ):
        ctx = Context(args, servers, Path(tmp), cpus, CpuMeter(servers.pids))
        ctx.mock = start_mock(ctx)
        systems = selected(args)
        # LiteLLM alone and last: see SYSTEMS.
        for group in (
            [s for s in systems if s.key != "litellm"],
            [s for s in systems if s.key == "litellm"],
        ):
            measured, long, prof = run_columns(ctx, group)
            results.update((r.name, r) for r in measured)
            memory = memory or long
            hot.update(prof)
    header.append(f"- load average at end {os.getloadavg()[0]:.2f}")
    tainted = [r.name for r in results.values() if (r.others_cpu or 0) > BUSY_SHARE]
    if tainted:
        header.insert(
            0, f"> **Other work took CPU while {', '.join(tainted)} ran: see the table.**"
        )
        header.insert(1, "")
    text = render(Run(results, memory, Targets(rss_growth_mb=args.rss_tolerance_mb)), header, hot)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
