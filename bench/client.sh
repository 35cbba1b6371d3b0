#!/usr/bin/env bash
# The client side by side with curl and lftp, in one run:
#  - single-stream download and upload of SIZE bytes (default 1 GiB) with
#    `ferry get`/`ferry put` and with curl, against Ferry's server and
#    against vsftpd (from $FERRY_PEERS, as .ci/run unpacks it; needs root),
#    in alternating rounds; medians and ratios;
#  - `ferry mirror -P 8` beside `lftp -e 'mirror -P 8'` of FILES small files
#    (default 2,000 of 4 KiB) from Ferry's server.
# Everything runs on loopback with tmpfs roots, bounded by ROUNDS; the
# servers started here are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-$((1 << 30))}
FILES=${FILES:-2000}
DIR=${DIR:-/dev/shm/ferry-client-bench}
bin=$(mktemp -d)
go build -o "$bin/ferry" ./cmd/ferry
rm -rf "$DIR" && mkdir -p "$DIR/ferry" "$DIR/local" "$DIR/vs/root/files" "$DIR/vs/empty"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$bin" "$DIR"' EXIT

port=$((30000 + RANDOM % 5000))
FERRY_PASSWORD=pw "$bin/ferry" serve --listen 127.0.0.1:$port --root "$DIR/ferry" --user bench \
  --log-level warn >/dev/null 2>&1 &
pids+=($!)
servers=("ferry ftp://bench:pw@127.0.0.1:$port")

vs=${FERRY_PEERS:-.ci/peers}/vsftpd/usr/sbin/vsftpd
if [ -x "$vs" ] && [ "$(id -u)" = 0 ]; then
  chown daemon "$DIR/vs/root/files"
  vport=$((port + 1))
  cat >"$DIR/vs/vsftpd.conf" <<EOF
listen=YES
listen_address=127.0.0.1
listen_port=$vport
background=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=$DIR/vs/root
ftp_username=daemon
nopriv_user=daemon
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
seccomp_sandbox=NO
isolate_network=NO
secure_chroot_dir=$DIR/vs/empty
xferlog_enable=NO
syslog_enable=NO
EOF
  "$vs" "$DIR/vs/vsftpd.conf" >/dev/null 2>&1 &
  pids+=($!)
  servers+=("vsftpd ftp://anonymous:x@127.0.0.1:$vport/files")
else
  echo "(vsftpd not found under \$FERRY_PEERS or not root: Ferry's server only)"
fi
sleep 1

head -c "$SIZE" /dev/urandom >"$DIR/local/src.bin"
. bench/lib.sh # median
# t CMD...: MB/s of SIZE bytes moved by CMD.
t() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" -v n="$SIZE" 'BEGIN {printf "%.0f", n / (e - s) / 1e6}'
}
for srv in "${servers[@]}"; do
  name=${srv%% *}
  url=${srv#* }
  curl -s -T "$DIR/local/src.bin" "$url/big.bin"
  for op in download upload; do
    F=""; C=""
    for r in $(seq "$ROUNDS"); do
      if [ $op = download ]; then
        F="$F $(t "$bin/ferry" get "$url/big.bin" "$DIR/local/f.bin")"
        C="$C $(t curl -s -o "$DIR/local/c.bin" "$url/big.bin")"
        rm -f "$DIR/local/f.bin" "$DIR/local/c.bin"
      else
        C="$C $(t curl -s -T "$DIR/local/src.bin" "$url/c-up.bin")"
        F="$F $(t "$bin/ferry" put "$DIR/local/src.bin" "$url/f-up.bin")"
      fi
    done
    mf=$(echo "$F" | median); mc=$(echo "$C" | median)
    echo "$name $op MB/s ferry:$F"
    echo "$name $op MB/s curl: $C"
    echo "$name $op median ferry $mf, curl $mc, ratio $(awk -v a="$mf" -v b="$mc" 'BEGIN {printf "%.2f", a/b}')"
  done
done

echo "== mirror of $FILES files of 4 KiB, 8 in parallel, from Ferry's server"
mkdir -p "$DIR/ferry/small"
head -c 4096 /dev/urandom >"$DIR/one"
for i in $(seq "$FILES"); do cp "$DIR/one" "$DIR/ferry/small/f$i.bin"; done
url="ftp://bench:pw@127.0.0.1:$port"
ts() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", e - s}'; }
F=""; L=""
for r in $(seq "$ROUNDS"); do
  rm -rf "$DIR/m-ferry" "$DIR/m-lftp"
  F="$F $(ts "$bin/ferry" mirror -P 8 "$url/small" "$DIR/m-ferry")"
  L="$L $(ts lftp -e "set net:max-retries 1; mirror -P 8 small $DIR/m-lftp; quit" "$url")"
  [ "$(ls "$DIR/m-ferry" | wc -l)" = "$FILES" ] && [ "$(ls "$DIR/m-lftp" | wc -l)" = "$FILES" ] || { echo "mirror incomplete"; exit 1; }
done
mf=$(echo "$F" | median); ml=$(echo "$L" | median)
echo "mirror seconds ferry:$F"
echo "mirror seconds lftp: $L"
echo "mirror median ferry ${mf}s, lftp ${ml}s, lftp/ferry $(awk -v a="$mf" -v b="$ml" 'BEGIN {printf "%.2f", b/a}')"
