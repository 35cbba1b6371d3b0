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
# ONLY=throughput stops after the 1 GiB transfers; OPS="RETR" (or "STOR")
# runs one direction of them.
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
echo "   (MB/s of each transfer, and MB per CPU-second the server spent on it)"
head -c $((1 << 30)) /dev/zero >"$DIR/root/big.bin"
# rate: a load report's MB/s and MB/CPU-s; sample SIDE CMD...: appends them
# to SIDE_M and SIDE_C.
rate() { awk '{m = c = 0; for (i = 2; i <= NF; i++) { if ($i ~ /^MB\/s;?$/) m = $(i-1); if ($i == "MB/CPU-s") c = $(i-1) } print m, c}'; }
sample() { local s=$1 o; shift; o=$("$@" | rate); eval "${s}_M+=\" ${o% *}\"; ${s}_C+=\" ${o#* }\""; }
fr() { "$bin/load" "${ferry[@]}" retr -path big.bin -pid $fpid; }
br() { "$bin/load" baseline-retr -file "$DIR/root/big.bin" "$@"; }
# Uploads send one kept file (-src): a file written just before each
# transfer would take the memory the last one freed (see bench/README.md).
head -c $((1 << 30)) /dev/urandom >"$DIR/src.bin"
fs() { "$bin/load" -src "$DIR/src.bin" "${ferry[@]}" stor -path up.bin -pid $fpid; rm -f "$DIR/root/up.bin"; }
bs() { "$bin/load" -src "$DIR/src.bin" baseline-stor -dir "$DIR" "$@"; }
ftr() { "$bin/load" "${ferry[@]}" tls-retr -path big.bin -pid $fpid; }
btr() { "$bin/load" baseline-tls-retr -file "$DIR/root/big.bin"; }
fts() { "$bin/load" -src "$DIR/src.bin" "${ferry[@]}" tls-stor -path up.bin -pid $fpid; rm -f "$DIR/root/up.bin"; }
bts() { "$bin/load" -src "$DIR/src.bin" baseline-tls-stor -dir "$DIR"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
. bench/lib.sh # median
# summary NAME SIDE...: medians of each side and each side's ratio to the first.
summary() {
  local name=$1 first="" s m c; shift
  for s in "$@"; do
    eval "m=\$(echo \"\${${s}_M}\" | median); c=\$(echo \"\${${s}_C}\" | median)"
    eval "echo \"$name $s MB/s:\${${s}_M}\"; echo \"$name $s MB/CPU-s:\${${s}_C}\""
    if [ -z "$first" ]; then first="$m $c"; echo "$name median $s: $m MB/s, $c MB/CPU-s"
    else echo "$name median $s: $m MB/s, $c MB/CPU-s; ${1}/$s $(ratio "${first% *}" "$m") by rate, $(ratio "${first#* }" "$c") by CPU"; fi
  done
}
for op in ${OPS:-RETR STOR}; do
  ferry_M=""; ferry_C=""; bare_M=""; bare_C=""; listening_M=""; listening_C=""
  if [ $op = RETR ]; then f=fr b=br; else f=fs b=bs; fi
  for r in $(seq "$ROUNDS"); do # F B L L B F: each side as often early as late
    sample ferry $f; sample bare $b; sample listening $b -listening
    sample listening $b -listening; sample bare $b; sample ferry $f
  done
  summary "$op" ferry bare listening
done
echo "== PROT P throughput, 1 GiB: Ferry beside a minimal crypto/tls program (ABBA order, medians)"
for op in ${OPS:-RETR STOR}; do
  ferry_M=""; ferry_C=""; tls_M=""; tls_C=""
  if [ $op = RETR ]; then f=ftr b=btr; else f=fts b=bts; fi
  for r in $(seq "$ROUNDS"); do sample ferry $f; sample tls $b; sample tls $b; sample ferry $f; done
  summary "TLS $op" ferry tls
done
if [ "${ONLY:-}" = throughput ]; then rm -rf "$DIR"; exit 0; fi
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
