#!/usr/bin/env bash
# Side-by-side figures: Ferry and (when given) another FTP server, driven by
# bench/load in alternating rounds, in one run. Every load is bounded in count
# and time; the servers started here are stopped by PID at the end.
#
#   bench/compare.sh                       # Ferry alone
#   PEER_ADDR=127.0.0.1:2140 PEER_USER=bench PEER_PASS=pw PEER_PID=1234 bench/compare.sh
#
# DIR (default /dev/shm/ferry-compare) holds Ferry's root; the peer serves
# its own, which should be on the same file system. ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-/dev/shm/ferry-compare}
ROUNDS=${ROUNDS:-3}
bin=$(mktemp -d)
go build -o "$bin/ferry" ./cmd/ferry
go build -o "$bin/load" ./bench/load
rm -rf "$DIR" && mkdir -p "$DIR/root/big"
( cd "$DIR/root/big" && seq -f 'file-%06g.dat' 0 99999 | xargs touch )
port=$((20000 + RANDOM % 10000))
FERRY_PASSWORD=bench-pw "$bin/ferry" serve --listen 127.0.0.1:$port --root "$DIR/root" --user bench \
  --log-level warn --max-sessions 0 >"$DIR/ferry.out" 2>"$DIR/ferry.err" &
fpid=$!
trap 'kill $fpid 2>/dev/null; rm -rf "$bin"' EXIT
sleep 1
ferry=(-addr 127.0.0.1:$port -user bench -pass bench-pw)
peer=()
if [ -n "${PEER_ADDR:-}" ]; then peer=(-addr "$PEER_ADDR" -user "$PEER_USER" -pass "$PEER_PASS"); fi

echo "== throughput, 1 GiB: Ferry beside the minimal Go program, bare and listening (see bench/README.md)"
head -c $((1 << 30)) /dev/zero >"$DIR/root/big.bin"
mbs() { awk '{print $(NF-1)}'; }
fr() { "$bin/load" "${ferry[@]}" retr -path big.bin | mbs; }
br() { "$bin/load" baseline-retr -file "$DIR/root/big.bin" "$@" | mbs; }
fs() { TMPDIR=$DIR "$bin/load" "${ferry[@]}" stor -path up.bin -size $((1 << 30)) | mbs; rm -f "$DIR/root/up.bin"; }
bs() { TMPDIR=$DIR "$bin/load" baseline-stor -dir "$DIR" -size $((1 << 30)) "$@" | mbs; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
. bench/lib.sh # median
for op in RETR STOR; do
  F=""; B=""; L=""
  if [ $op = RETR ]; then f=fr b=br; else f=fs b=bs; fi
  for r in $(seq "$ROUNDS"); do # F B L L B F: each side as often early as late
    F="$F $($f)"; B="$B $($b)"; L="$L $($b -listening) $($b -listening)"; B="$B $($b)"; F="$F $($f)"
  done
  mf=$(echo "$F" | median); mb=$(echo "$B" | median); ml=$(echo "$L" | median)
  echo "$op MB/s ferry:$F"
  echo "$op MB/s bare baseline:$B"
  echo "$op MB/s listening baseline:$L"
  echo "$op median ferry $mf, bare $mb, listening $ml; ferry/bare $(ratio "$mf" "$mb"), ferry/listening $(ratio "$mf" "$ml"), listening/bare $(ratio "$ml" "$mb")"
done
echo "== PROT P throughput, 1 GiB: Ferry beside a minimal crypto/tls program (ABBA order, medians)"
ftr() { "$bin/load" "${ferry[@]}" tls-retr -path big.bin | mbs; }
btr() { "$bin/load" baseline-tls-retr -file "$DIR/root/big.bin" | mbs; }
fts() { TMPDIR=$DIR "$bin/load" "${ferry[@]}" tls-stor -path up.bin -size $((1 << 30)) | mbs; rm -f "$DIR/root/up.bin"; }
bts() { TMPDIR=$DIR "$bin/load" baseline-tls-stor -dir "$DIR" -size $((1 << 30)) | mbs; }
for op in RETR STOR; do
  F=""; B=""
  if [ $op = RETR ]; then f=ftr b=btr; else f=fts b=bts; fi
  for r in $(seq "$ROUNDS"); do F="$F $($f)"; B="$B $($b) $($b)"; F="$F $($f)"; done
  mf=$(echo "$F" | median); mb=$(echo "$B" | median)
  echo "TLS $op MB/s ferry:$F"
  echo "TLS $op MB/s baseline:$B"
  echo "TLS $op median ferry $mf, baseline $mb, ratio $(ratio "$mf" "$mb")"
done
# Throughput first, on the fresh process (after 10,000 idle sessions the Go
# runtime spends a while returning their memory). Then the rounds; the idle
# sessions last. Warm-up: the first login of a password pays one argon2id run.
"$bin/load" "${ferry[@]}" logins -c 8 -d 1s >/dev/null
for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  for who in ferry peer; do
    [ "$who" = peer ] && [ ${#peer[@]} -eq 0 ] && continue
    if [ "$who" = ferry ]; then a=("${ferry[@]}"); else a=("${peer[@]}"); fi
    echo "-- $who"
    "$bin/load" "${a[@]}" logins -c 32 -d 3s
    "$bin/load" "${a[@]}" small -c 8 -n 4000 -size 4096
    "$bin/load" "${a[@]}" list -path big || true
  done
done
echo "== idle sessions"
"$bin/load" "${ferry[@]}" idle -n 10000 -pid $fpid -hold 3s
if [ ${#peer[@]} -gt 0 ] && [ -n "${PEER_PID:-}" ]; then
  "$bin/load" "${peer[@]}" idle -n "${PEER_IDLE:-400}" -pid "$PEER_PID" -hold 3s || true
fi
rm -rf "$DIR"
