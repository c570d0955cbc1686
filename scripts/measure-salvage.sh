#!/usr/bin/env bash
# Measures salvage on a realistic archive, against the stock procedure:
# a disk of real files (a tar of /usr, ~1 GiB) archived as vzdump does (zstd --threads=1, about
# 300 MB), damaged by a 64 KiB run of garbage at 30 % (or at the fractions given), then
#   stock:  zstd -d -c --no-check | vmacheck.py - -x DIR   (what the story's owner did, with
#           the team's strict checker standing in for Proxmox's 'vma extract')
#   ours:   vzsalvage extract
# both compared with the original disk, cluster by cluster.
# Usage: scripts/measure-salvage.sh [PERCENT...]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MEASURE_DIR:-/tmp/vzsalvage-measure}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
go build -o "$dir/cmpimg" ./scripts/cmpimg
arc="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
disk="$dir/disk.raw"
if [ ! -s "$arc" ]; then
  (set +o pipefail; tar cf - --exclude="*.a" /usr/lib /usr/share 2>/dev/null | head -c $((1000 * 1024 * 1024)) > "$disk")
  truncate -s 1100M "$disk"
  go run ./scripts/mkvma "$disk:drive-scsi0" | zstd -q --threads=1 -c > "$arc"
fi
size=$(stat -c %s "$arc")
echo "archive: $((size / 1048576)) MiB compressed, disk $(( $(stat -c %s "$disk") / 1048576 )) MiB"
checker=../shared/tools/vmacheck.py
for pct in "${@:-30}"; do
  bad="$dir/bad/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
  mkdir -p "$dir/bad"
  cp "$arc" "$bad"
  head -c 65536 /dev/urandom | dd of="$bad" bs=1 seek=$((size * pct / 100)) conv=notrunc status=none
  echo "--- 64 KiB garbage at ${pct}%"
  rm -rf "$dir/stock" "$dir/ours"
  if [ -f "$checker" ]; then
    zstd -q -d -c --no-check "$bad" 2>/dev/null | python3 "$checker" - -x "$dir/stock" >/dev/null 2>&1 || true
    printf 'stock (zstd --no-check | vma extract): '
    if [ -f "$dir/stock/disk-drive-scsi0.raw" ]; then "$dir/cmpimg" "$disk" "$dir/stock/disk-drive-scsi0.raw"; else echo "no image"; fi
  fi
  /usr/bin/time -f "ours: %e s, peak RSS %M KB" "$dir/vzsalvage" extract -q "$bad" -o "$dir/ours" >/dev/null || true
  printf 'vzsalvage extract: '
  "$dir/cmpimg" "$disk" "$dir/ours/disk-drive-scsi0.raw" "$dir/ours/damage.json" drive-scsi0
done
