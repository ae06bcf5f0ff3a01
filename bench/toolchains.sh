#!/usr/bin/env bash
# Proxy rates of h2cgw built by two Go toolchains, head to head in one run
# (bench/README.md, "Results"): h2load -t 1 → h2cgw --access-log=false →
# h2o serving a 1 KiB file over HTTP/1.1 or h2c, each load for 5 s after
# 1 s of warm-up, the two builds alternating in every round (the order
# flipped each round). Prints one line per run; take the medians.
#
#   bench/toolchains.sh [go1.26.11 go1.27.4] [rounds]
#
# Needs h2load (nghttp2-client) and h2o; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:-go1.26.11}
NEW=${2:-go1.27.4}
ROUNDS=${3:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/www/small.txt"
for tc in "$OLD" "$NEW"; do
  GOTOOLCHAIN=$tc go build -trimpath -o "$work/h2cgw-$tc" ./cmd/h2cgw
done
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; }
run_one() { # binary scheme load…
  local bin=$1 scheme=$2; shift 2
  local hp gp
  hp=$(free_port); gp=$(free_port)
  printf 'listen:\n  host: 127.0.0.1\n  port: %s\nnum-threads: 1\nuser: root\nhosts:\n  "default":\n    paths:\n      /:\n        file.dir: %s\n' \
    "$hp" "$work/www" > "$work/h2o.conf"
  h2o -c "$work/h2o.conf" >/dev/null 2>&1 & local hpid=$!
  wait_port "$hp"
  "$bin" --listen "127.0.0.1:$gp" --admin-listen= --access-log=false --log-level error \
    --upstream "$scheme://127.0.0.1:$hp" 2>/dev/null & local gpid=$!
  wait_port "$gp"
  h2load "$@" -D 5 --warm-up-time 1 -t 1 "http://127.0.0.1:$gp/small.txt" 2>&1 |
    awk '/^finished in/ {for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i-1)}'
  kill "$gpid" "$hpid" 2>/dev/null; wait "$gpid" "$hpid" 2>/dev/null || true
}
for r in $(seq "$ROUNDS"); do
  for scheme in http h2c; do
    for load in "-c 16 -m 10" "-c 64 -m 100"; do
      order="$OLD $NEW"; [ $((r % 2)) = 0 ] && order="$NEW $OLD"
      for tc in $order; do
        # shellcheck disable=SC2086 # the load is two flags with values
        echo "round $r $scheme $load $tc $(run_one "$work/h2cgw-$tc" "$scheme" $load)"
      done
    done
  done
done
