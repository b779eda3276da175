#!/bin/sh
# Lambda entry for streaming chat, run by the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=
# /opt/bootstrap). The adapter waits for GET /health on the port below, then forwards each
# API Gateway event as an HTTP request and streams the response body back as it is written.
set -eu

port="${AWS_LWA_PORT:-${PORT:-8080}}"
log_level="$(printf '%s' "${LOCKGATE_LOG_LEVEL:-info}" | tr '[:upper:]' '[:lower:]')"

# The adapter starts this script outside the Python runtime's bootstrap, so the layer's
# site-packages (/opt/python) are not on the path by themselves.
PYTHONPATH="${LAMBDA_TASK_ROOT:-$(dirname "$0")}:/opt/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH

# The protocol is the one `lockgate serve` runs: a response's head goes out with its first
# body bytes, not in a write of its own.
python_bin="$(command -v python || command -v python3)"
exec "$python_bin" -m uvicorn \
  --factory orchestrate_app:create_app \
  --http lockgate.http_server:HeadWithBodyProtocol \
  --host 127.0.0.1 \
  --port "$port" \
  --log-level "$log_level" \
  --no-server-header
