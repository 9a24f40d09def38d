#!/usr/bin/env bash
# Start a Qdrant server for the server-path tests: $QDRANT_BIN or `qdrant` on PATH, bound to 127.0.0.1,
# with temporary storage. Prints "QDRANT_URL=<url>" once it is ready. With no binary it says so and
# exits 0 (the server tests then skip with their reason). Stop it with: kill "$(cat "$QDRANT_PIDFILE")".
set -euo pipefail
BIN=${QDRANT_BIN:-$(command -v qdrant || true)}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "no qdrant binary (set QDRANT_BIN or put qdrant on PATH): server-path tests will be skipped" >&2
  exit 0
fi
PORT=${QDRANT_PORT:-6333}
STORE=$(mktemp -d -t rf-mcp-qdrant-XXXXXX)
QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT=$PORT QDRANT__SERVICE__GRPC_PORT=$((PORT + 1)) \
  QDRANT__STORAGE__STORAGE_PATH="$STORE/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$STORE/snapshots" \
  nohup "$BIN" >"$STORE/qdrant.log" 2>&1 &
echo $! >"$STORE/pid"
for _ in $(seq 1 60); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" 2>/dev/null; then
    echo "QDRANT_URL=http://127.0.0.1:$PORT"
    echo "qdrant pid $(cat "$STORE/pid"), storage $STORE" >&2
    exit 0
  fi
  sleep 1
done
echo "qdrant did not become ready; see $STORE/qdrant.log" >&2
kill "$(cat "$STORE/pid")" 2>/dev/null || true
exit 1
