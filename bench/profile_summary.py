"""Condense a py-spy raw profile into the two views that explain a proxy's overhead.

py-spy's raw format is one line per distinct stack, `frame;frame;...;leaf count`, each frame
`function (path)`. Self time grouped by package says which layer burns the CPU (server,
framework, validation, HTTP client, our code); inclusive time of Lockgate's own functions says
which step of the request flow is responsible.

    python -m bench.profile_summary bench/results/lockgate_profile.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*)\)$")
_SITE = re.compile(r"(?:site|dist)-packages/([^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/([^/]+)")


def _package(path: str) -> str:
    if "/lockgate/" in path:
        return "lockgate." + path.split("/lockgate/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if m := _SITE.search(path):
        return m.group(1).removesuffix(".py").split(".", 1)[0]
    if m := _STDLIB.search(path):
        return "stdlib " + m.group(1).removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "(native)"


def _ours(path: str) -> bool:
    """Lockgate's frames, less the entry point (cli.py), which contains every sample."""
    return "/lockgate/" in path and not path.endswith("/lockgate/cli.py")


def _split(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    return (m.group("func"), m.group("path")) if m else (frame.strip(), "")


def _short(func: str, path: str) -> str:
    where = path.split("/lockgate/", 1)[1] if "/lockgate/" in path else path.rsplit("/", 1)[-1]
    return f"{func} ({where})"


def summarize(raw: Path, top: int = 12) -> str:
    """Markdown: self time by package and inclusive time of Lockgate functions, in percent."""
    by_package: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_split(f) for f in stack.split(";")]
        by_package[_package(frames[-1][1])] += count
        for key in {_short(f, p) for f, p in frames if _ours(p)}:
            ours[key] += count
    if not total:
        return "py-spy recorded no samples."
    lines = [f"{total} samples of the server process under c=64 load.", ""]
    lines += ["| self time by package | % |", "|---|---:|"]
    lines += [f"| {name} | {100 * n / total:.1f} |" for name, n in by_package.most_common(top)]
    lines += ["", "| Lockgate function (inclusive) | % |", "|---|---:|"]
    lines += [f"| {name} | {100 * n / total:.1f} |" for name, n in ours.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])))
