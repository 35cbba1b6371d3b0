#!/usr/bin/env bash
# Runs the throughput benchmarks with baseline and ferry alternating, and
# prints the ratio ferry/baseline of each adjacent pair and their median:
# on a shared, noisy machine only side-by-side ratios mean anything.
# Usage: bench/pairs.sh [count] [benchmark regexp]   (FERRY_BENCH_DIR=/dev/shm recommended)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
re=${2:-'RETR|STOR'}
go test ./bench -run XXX -bench "$re" -benchtime 2x -count "$count" | tee /dev/stderr |
awk '/^Benchmark/ {
  split($1, p, "/"); name=p[1]; sub(/-[0-9]+$/, "", p[2]); kind=p[2]
  for (i=1;i<=NF;i++) if ($(i+1)=="MB/s") v=$i
  if (kind=="baseline") base[name]=v
  else if (kind=="ferry" && (name in base)) { r=v/base[name]; ratios[name]=ratios[name] " " sprintf("%.2f", r); n[name]++; all[name, n[name]]=r }
}
END {
  for (k in n) {
    m=n[k]; for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (all[k,j]<all[k,i]) { t=all[k,i]; all[k,i]=all[k,j]; all[k,j]=t }
    med = (m%2) ? all[k,(m+1)/2] : (all[k,m/2]+all[k,m/2+1])/2
    printf "%s ferry/baseline per pair:%s  median %.2f\n", k, ratios[k], med
  }
}'
