"""Turn the measurements of one run into the markdown table, the ratios and the verdicts.

Every comparison is made within the run: "added" figures subtract the direct-to-mock figure of
the same run, and the targets are ratios to the pass-through floor measured minutes earlier on
the same machine, so a busy or slow machine shifts all columns together instead of failing
targets. The targets apply to the relaying Lockgate column; the defaults column shows what
caching, limits and the injection guard cost on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.load import LoadResult

DIRECT, PASSTHROUGH, LITELLM, LOCKGATE = "mock direct", "passthrough", "LiteLLM", "Lockgate"
LOCKGATE_DEFAULTS = "Lockgate, defaults"
COLUMNS = (DIRECT, PASSTHROUGH, LITELLM, LOCKGATE, LOCKGATE_DEFAULTS)
MB = 1024 * 1024


@dataclass
class Targets:
    """Relative to the pass-through floor of the same run, except memory."""

    added_p50_vs_floor: float = 1.5
    ttft_added_vs_floor: float = 1.5
    rps_vs_floor: float = 0.4
    p99_vs_floor: float = 3.0
    rss_after_load_mb: float = 150.0
    rss_growth_mb: float = 5.0


@dataclass
class SystemResult:
    name: str
    error: str | None = None
    c1_p50: float | None = None
    c1_p99: float | None = None
    ttft_p50: float | None = None
    load: dict[int, LoadResult] = field(default_factory=dict)
    """Per connection count, its windows combined (see `bench.load.combined`)."""
    windows: dict[int, list[LoadResult]] = field(default_factory=dict)
    errors: int = 0
    rss_after_load: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    others_cpu: float | None = None
    cache_answers: dict[str, int] = field(default_factory=dict)
    c1_by_prompt: dict[str, float] = field(default_factory=dict)
    c1_cpu_ms_per_request: float | None = None
    """The server's CPU time per request at c=1: a floor under its added latency there."""
    cpu_ms_per_request: float | None = None
    """The server's CPU time per request under wrk load (c=64): unlike wall-clock figures,
    barely moved by other work on the machine."""


@dataclass
class MemoryResult:
    """RSS after each slice of the long run; the first entry is the warmed-up baseline."""

    samples: list[tuple[int, int]]
    errors: int
    others_cpu: float | None = None

    @property
    def requests(self) -> int:
        return self.samples[-1][0]

    @property
    def growth_mb(self) -> float:
        return (self.samples[-1][1] - self.samples[0][1]) / MB


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; enough samples make the method irrelevant."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


Cell = float | None


def _ms(value: Cell) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _added(value: Cell) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _rps(value: Cell) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _mb(value: Cell) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


class Run:
    """The results of one bench run, keyed by column name, with the derived figures."""

    def __init__(
        self, results: dict[str, SystemResult], memory: MemoryResult | None, targets: Targets
    ) -> None:
        self.results = results
        self.memory = memory
        self.targets = targets

    def value(self, system: str, get: Callable[[SystemResult], Cell]) -> Cell:
        result = self.results.get(system)
        return None if result is None or result.error else get(result)

    def added(self, system: str, get: Callable[[SystemResult], Cell]) -> Cell:
        base, value = self.value(DIRECT, get), self.value(system, get)
        return None if base is None or value is None or system == DIRECT else value - base

    def rps(self, system: str, connections: int) -> Cell:
        def get(r: SystemResult) -> Cell:
            load = r.load.get(connections)
            return load.rps if load else None

        return self.value(system, get)

    def rps_ratio(self, system: str, other: str, connections: int = 64) -> Cell:
        mine, theirs = self.rps(system, connections), self.rps(other, connections)
        return None if mine is None or not theirs else mine / theirs

    def vs_floor(self, get: Callable[[SystemResult], Cell], added: bool = True) -> Cell:
        """Lockgate's figure as a multiple of the pass-through floor's."""
        pick = self.added if added else self.value
        mine, floor = pick(LOCKGATE, get), pick(PASSTHROUGH, get)
        return None if mine is None or floor is None or floor <= 0 else mine / floor

    def checks(self) -> dict[str, bool | None]:
        t = self.targets
        p50 = self.vs_floor(_c1_p50)
        ttft = self.vs_floor(_ttft)
        p99 = self.vs_floor(_wrk64_p99, added=False)
        ratio = self.rps_ratio(LOCKGATE, PASSTHROUGH)
        rss = self.value(LOCKGATE, _rss_mb)
        errors = self.value(LOCKGATE, lambda r: r.errors)
        return {
            "added_p50": None if p50 is None else p50 <= t.added_p50_vs_floor,
            "ttft": None if ttft is None else ttft <= t.ttft_added_vs_floor,
            "rps": None if ratio is None else ratio >= t.rps_vs_floor,
            "p99": None if p99 is None else p99 <= t.p99_vs_floor,
            "rss": None if rss is None else rss <= t.rss_after_load_mb,
            "memory": None if self.memory is None else self.memory.growth_mb <= t.rss_growth_mb,
            "errors": None if errors is None else errors == 0 and self.memory_errors() == 0,
        }

    def memory_errors(self) -> int:
        return self.memory.errors if self.memory else 0


def _row(metric: str, cells: Sequence[str], target: str = "", result: str = "") -> str:
    return "| " + " | ".join([metric, *cells, target or "—", result or "—"]) + " |"


def _cells(run: Run, fmt: Callable[[Cell], str], get: Callable[[str], Cell]) -> list[str]:
    return [fmt(get(name)) if name in run.results else "skipped" for name in COLUMNS]


def _added_cells(run: Run, get: Callable[[SystemResult], Cell]) -> list[str]:
    """Differences to the direct column; the direct column itself has none."""
    cells = _cells(run, _added, lambda s: run.added(s, get))
    return ["—", *cells[1:]]


def table(run: Run) -> str:
    t, ok = run.targets, run.checks()
    memory = run.memory
    lines = [
        "| metric | " + " | ".join(COLUMNS) + " | target (Lockgate) | result |",
        "|---|" + "---:|" * len(COLUMNS) + "---|---|",
        _row("latency p50, c=1 (ms)", _cells(run, _ms, lambda s: run.value(s, _c1_p50))),
        _row(
            "added p50, c=1 (ms)",
            _added_cells(run, _c1_p50),
            f"≤ {t.added_p50_vs_floor:g}x the floor's",
            _verdict(ok["added_p50"]),
        ),
        _row("latency p99, c=1 (ms)", _cells(run, _ms, lambda s: run.value(s, _c1_p99))),
        _row("added p99, c=1 (ms)", _added_cells(run, _c1_p99)),
        _row(
            "server CPU per request, c=1 (ms)",
            _cells(run, _cpu, lambda s: run.value(s, lambda r: r.c1_cpu_ms_per_request)),
        ),
        _row("req/s, c=16", _cells(run, _rps, lambda s: run.rps(s, 16))),
        _row(
            "req/s, c=64",
            _cells(run, _rps, lambda s: run.rps(s, 64)),
            f"≥ {t.rps_vs_floor:.0%} of the floor's",
            _verdict(ok["rps"]),
        ),
        _row(
            "latency p99 under load, c=64 (ms)",
            _cells(run, _ms, lambda s: run.value(s, _wrk64_p99)),
            f"≤ {t.p99_vs_floor:g}x the floor's",
            _verdict(ok["p99"]),
        ),
        _row(
            "server CPU per request, c=64 (ms)",
            _cells(run, _cpu, lambda s: run.value(s, lambda r: r.cpu_ms_per_request)),
        ),
        _row("first chunk p50, stream (ms)", _cells(run, _ms, lambda s: run.value(s, _ttft))),
        _row(
            "first chunk added p50 (ms)",
            _added_cells(run, _ttft),
            f"≤ {t.ttft_added_vs_floor:g}x the floor's",
            _verdict(ok["ttft"]),
        ),
        _row(
            "RSS after load (MB)",
            _cells(run, _mb, lambda s: run.value(s, _rss_mb)),
            f"≤ {t.rss_after_load_mb:g} MB",
            _verdict(ok["rss"]),
        ),
        _row(
            f"RSS growth over {memory.requests:,} requests (MB)"
            if memory
            else "RSS growth over the long run (MB)",
            [
                (_added(memory.growth_mb) if memory else "n/a") if name == LOCKGATE else "—"
                for name in COLUMNS
            ],
            f"≤ +{t.rss_growth_mb:g} MB",
            _verdict(ok["memory"]),
        ),
        _row(
            "CPU taken by other work meanwhile (%)",
            [_percent(r.others_cpu) if r else "skipped" for r in map(run.results.get, COLUMNS)],
        ),
        _row(
            "failed requests under load",
            _cells(run, lambda v: "n/a" if v is None else f"{v:.0f}", lambda s: _errors(run, s)),
            "0",
            _verdict(ok["errors"]),
        ),
    ]
    return "\n".join(lines)


def _c1_p50(r: SystemResult) -> Cell:
    return r.c1_p50


def _c1_p99(r: SystemResult) -> Cell:
    return r.c1_p99


def _ttft(r: SystemResult) -> Cell:
    return r.ttft_p50


def _rss_mb(r: SystemResult) -> Cell:
    return None if r.rss_after_load is None else r.rss_after_load / MB


def _wrk64_p99(r: SystemResult) -> Cell:
    return r.load[64].p99_ms if 64 in r.load else None


def _cpu(value: Cell) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _errors(run: Run, system: str) -> Cell:
    errors = run.value(system, lambda r: r.errors)
    if errors is not None and system == LOCKGATE:
        errors += run.memory_errors()
    return errors


def _times(value: Cell) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def _percent(value: Cell) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def ratios(run: Run) -> str:
    """The comparisons the targets are about, as sentences a reader can check in the table."""
    lg = run.added(LOCKGATE, _c1_p50)
    lite = run.added(LITELLM, _c1_p50)
    floor = run.added(PASSTHROUGH, _c1_p50)
    added_ratio = None if lg is None or lite is None or lg <= 0 else lite / lg
    lines = [
        f"- Added latency at c=1 (p50): Lockgate {_added(lg)} ms, pass-through floor "
        f"{_added(floor)} ms ({_times(run.vs_floor(_c1_p50))} the floor's), LiteLLM "
        f"{_added(lite)} ms (LiteLLM adds {_times(added_ratio)} what Lockgate adds).",
        f"- First chunk added (p50): Lockgate {_times(run.vs_floor(_ttft))} the floor's.",
        f"- Throughput at c=64: Lockgate = {_times(run.rps_ratio(LOCKGATE, LITELLM))} LiteLLM, "
        f"{_percent(run.rps_ratio(LOCKGATE, PASSTHROUGH))} of the pass-through floor, "
        f"{_percent(run.rps_ratio(LOCKGATE, DIRECT))} of the mock served directly; p99 under "
        f"that load {_times(run.vs_floor(_wrk64_p99, added=False))} the floor's.",
        f"- Throughput at c=16: Lockgate = {_times(run.rps_ratio(LOCKGATE, LITELLM, 16))} "
        f"LiteLLM, {_percent(run.rps_ratio(LOCKGATE, PASSTHROUGH, 16))} of the floor.",
        *_feature_cost(run),
        *_windows(run),
    ]
    if run.memory:
        series = ", ".join(f"{n:,}: {rss / MB:.1f}" for n, rss in run.memory.samples)
        lines.append(
            f"- Lockgate RSS (MB) by requests served in the long run: {series} "
            f"(growth {run.memory.growth_mb:+.1f} MB; {run.memory.errors} failed; other work "
            f"took {_percent(run.memory.others_cpu)} of the CPUs meanwhile)."
        )
    lines += by_prompt(run)
    lockgate = run.results.get(LOCKGATE)
    if lockgate and lockgate.headers:
        shown = ", ".join(f"`{k}: {v}`" for k, v in sorted(lockgate.headers.items()))
        lines.append(f"- Lockgate's first reply said {shown}.")
    if lockgate and lockgate.cache_answers:
        seen = ", ".join(f"{k} {n:,}" for k, n in sorted(lockgate.cache_answers.items()))
        lines.append(f"- Lockgate's `x-lockgate-cache` over the c=1 requests: {seen}.")
    for name in COLUMNS:
        result = run.results.get(name)
        lines += [f"- {name}: {note}" for note in (result.notes if result else [])]
        if result and result.error:
            lines.append(f"- {name} not measured: {result.error.splitlines()[0]}")
    return "\n".join(lines)


def _windows(run: Run) -> list[str]:
    """Each window's p99 at c=64, so a stall that one window caught is seen, not hidden."""
    shown = []
    for name in (PASSTHROUGH, LOCKGATE, LOCKGATE_DEFAULTS):
        result = run.results.get(name)
        windows = result.windows.get(64, []) if result and not result.error else []
        if len(windows) > 1:
            shown.append(f"{name} " + " / ".join(f"{w.p99_ms:.0f}" for w in windows))
    if not shown:
        return []
    return [
        "- p99 at c=64 in each window (ms; the table shows the median window): "
        + "; ".join(shown)
        + "."
    ]


def by_prompt(run: Run) -> list[str]:
    """Lockgate's added p50 at c=1 for each prompt of the mix: a gateway whose work depends on
    the text shows it here, and the overall p50 is read against it."""
    lockgate, direct = run.results.get(LOCKGATE), run.results.get(DIRECT)
    if not lockgate or not direct or lockgate.error or direct.error:
        return []
    added = {
        prompt: ms - direct.c1_by_prompt[prompt]
        for prompt, ms in lockgate.c1_by_prompt.items()
        if prompt in direct.c1_by_prompt
    }
    shown = "; ".join(f"{prompt} {ms:+.2f}" for prompt, ms in sorted(added.items(), key=_second))
    return [f"- Lockgate's added p50 at c=1 by prompt (ms): {shown}."] if added else []


def _second(item: tuple[str, float]) -> float:
    return item[1]


def _feature_cost(run: Run) -> list[str]:
    """What caching, limits and the injection guard in their default states add to a relay."""
    relay, full = run.results.get(LOCKGATE), run.results.get(LOCKGATE_DEFAULTS)
    if not relay or not full or relay.error or full.error:
        return []
    p50 = run.added(LOCKGATE_DEFAULTS, _c1_p50)
    relay_p50 = run.added(LOCKGATE, _c1_p50)
    cost = None if p50 is None or relay_p50 is None else p50 - relay_p50
    return [
        f"- Features in their default states (exact + semantic cache on every miss, limits, "
        f"injection guard flagging) add {_added(cost)} ms at c=1 (p50) to the relay and take "
        f"c=64 throughput to {_percent(run.rps_ratio(LOCKGATE_DEFAULTS, LOCKGATE))} of the "
        "relay's; every prompt is unique, so each request pays for a cache miss (embedding "
        "included) and none is served from the cache."
    ]
