#!/usr/bin/env bash
# GPTCache for bench.semantic_quality, in its own virtualenv so its pins never touch .venv.
# sqlite (via sqlalchemy) + faiss-cpu is the store `init_similar_cache` builds by default.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.bench-venv/gptcache
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check gptcache==0.1.44 faiss-cpu numpy sqlalchemy
"$VENV/bin/python" -c "import gptcache, faiss; print('gptcache', gptcache.__version__)"
