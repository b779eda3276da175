#!/usr/bin/env bash
# Installs the bench's own tools, idempotently:
#   - LiteLLM's proxy in .bench-venv/litellm, apart from the project's virtualenv so that its
#     pins never touch ours;
#   - wrk, the load generator, from Debian;
#   - py-spy in .bench-venv/tools, for `gateway_overhead --profile`.
# Usage: bench/setup_litellm.sh [--profiler]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BENCH_PYTHON:-python3}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

litellm_venv="$root/.bench-venv/litellm"
if [ ! -x "$litellm_venv/bin/litellm" ]; then
    echo "bench: installing litellm[proxy] into $litellm_venv (a few minutes)" >&2
    "$python" -m venv "$litellm_venv"
    "$litellm_venv/bin/pip" install -q --disable-pip-version-check 'litellm[proxy]' 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    test -x "$litellm_venv/bin/litellm"
fi

if [ "${1:-}" = "--profiler" ]; then
    tools_venv="$root/.bench-venv/tools"
    if [ ! -x "$tools_venv/bin/py-spy" ]; then
        echo "bench: installing py-spy into $tools_venv" >&2
        "$python" -m venv "$tools_venv"
        "$tools_venv/bin/pip" install -q --disable-pip-version-check py-spy 2>&1 \
            | grep -v "^WARNING: Location" >&2 || true
        test -x "$tools_venv/bin/py-spy"
    fi
fi
