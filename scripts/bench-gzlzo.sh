#!/usr/bin/env bash
# Benchmarks vzsalvage's clean path on .vma.gz and .vma.lzo archives against the CLIs that
# restore them, on the same file, as ratios measured in one run (> 1.0 = vzsalvage is faster):
#   verify  vs  gzip -dc > /dev/null      (archive by gzip --rsyncable; pigz -dc shown too)
#   verify  vs  lzop -dc > /dev/null      (archive by lzop)
# and the peak RSS of verify. The disk is generated from a seed (scripts/mkdisk), the same
# bytes on every machine. The decoders alone: go test -bench . ./codec/gzip ./codec/lzo
# (BenchmarkRead against BenchmarkGzipCLI / BenchmarkLzopCLI).
# Usage: scripts/bench-gzlzo.sh [DISK_MIB]   (default 1000; archives are built once in $BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1000}
dir=${BENCH_DIR:-/tmp/vzsalvage-bench-gzlzo}
mkdir -p "$dir"
for tool in mkdisk mkvma; do go build -o "$dir/$tool" "./scripts/$tool"; done
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
name=vzdump-qemu-100-2025_12_15-03_00_03.vma
if [ ! -s "$dir/$name.lzo" ] || [ "$(cat "$dir/size" 2>/dev/null)" != "$mib" ]; then
  echo "building a ${mib} MiB disk and its archives..." >&2
  "$dir/mkdisk" -size "${mib}M" > "$dir/disk.raw"
  "$dir/mkvma" "$dir/disk.raw:drive-scsi0" > "$dir/raw.vma"
  gzip --rsyncable < "$dir/raw.vma" > "$dir/$name.gz"
  lzop < "$dir/raw.vma" > "$dir/$name.lzo"
  echo "$mib" > "$dir/size"
  rm -f "$dir/disk.raw" "$dir/raw.vma"
fi

source scripts/benchlib.sh
for ext in gz lzo; do
  arc="$dir/$name.$ext"
  cat "$arc" > /dev/null # warm the page cache
  dec=gzip; [ "$ext" = lzo ] && dec=lzop
  tc=$(best sh -c "$dec -dc '$arc' > /dev/null")
  tv=$(best "$dir/vzsalvage" verify -q "$arc")
  rv=$(rss "$dir/vzsalvage" verify -q "$arc")
  printf '%s: archive %s MiB, disk %s MiB\n' "$ext" $(( $(stat -c %s "$arc") / 1048576 )) "$mib"
  printf '  verify %.2fs vs %s -dc >/dev/null %.2fs: ratio %.2fx, peak RSS %d MiB\n' "$tv" "$dec" "$tc" "$(echo "$tc / $tv" | bc -l)" $((rv / 1024))
  if [ "$ext" = gz ] && command -v pigz >/dev/null; then
    tp=$(best sh -c "pigz -dc '$arc' > /dev/null")
    printf '  (pigz -dc >/dev/null %.2fs: ratio %.2fx)\n' "$tp" "$(echo "$tp / $tv" | bc -l)"
  fi
done
