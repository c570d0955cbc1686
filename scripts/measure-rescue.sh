#!/usr/bin/env bash
# Measures rescue at scale: a VM whose root ext4 (GPT, mke2fs -d) holds real files (a copy of
# parts of /usr: thousands of files, ~1 GiB), a bare XFS data disk and an efidisk, archived as
# vzdump does (zstd --threads=1), damaged by a 64 KiB run of garbage at the given fractions of the
# file (default 30). For each: how many root files come back byte-identical, and whether every
# file that differs is listed in damaged_files.
# Usage: scripts/measure-rescue.sh [PERCENT...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MEASURE_DIR:-/tmp/vzsalvage-measure-rescue}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
arc="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
src="$dir/src"
if [ ! -s "$arc" ]; then
  rm -rf "$src"; mkdir -p "$src/usr"
  cp -a /usr/share/doc /usr/share/locale /usr/share/perl /usr/lib/python3* "$src/usr/" 2>/dev/null || true
  du -sh "$src" >&2
  truncate -s 2G "$dir/root.raw"
  sgdisk -n1:2048:+8M -t1:ef00 -n2:0:0 -t2:8300 -c2:root "$dir/root.raw" >/dev/null
  start=$(sgdisk -i2 "$dir/root.raw" | awk '/First sector/ {print $3}')
  end=$(sgdisk -i2 "$dir/root.raw" | awk '/Last sector/ {print $3}')
  mke2fs -q -F -t ext4 -d "$src" -E offset=$((start * 512)) "$dir/root.raw" $(((end - start + 1) / 2))k
  truncate -s 300M "$dir/data.raw"; mkfs.xfs -q -f "$dir/data.raw"
  head -c 540672 /dev/zero | tr '\0' '\377' > "$dir/efi.raw"
  go run ./scripts/mkvma "$dir/efi.raw:drive-efidisk0" "$dir/root.raw:drive-scsi0" "$dir/data.raw:drive-scsi1" |
    zstd -q --threads=1 -c > "$arc"
  (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$dir/original.sha256"
fi
size=$(stat -c %s "$arc")
echo "archive $((size / 1048576)) MiB, $(wc -l < "$dir/original.sha256") files in the root filesystem"
for pct in "${@:-30}"; do
  bad="$dir/bad/$(basename "$arc")"
  mkdir -p "$dir/bad"; cp "$arc" "$bad"
  head -c 65536 /dev/urandom | dd of="$bad" bs=1 seek=$((size * pct / 100)) conv=notrunc status=none
  rm -rf "$dir/out"
  "$dir/vzsalvage" rescue -q "$bad" -o "$dir/out" > /dev/null || true
  python3 - "$dir" "$pct" <<'PY'
import hashlib, json, os, sys
d, pct = sys.argv[1], sys.argv[2]
rep = json.load(open(os.path.join(d, "out", "report.json")))
listed = {f["path"] for f in rep["damaged_files"] if f["volume"] == "drive-scsi0-p2"}
same = total = unlisted = 0
for line in open(os.path.join(d, "original.sha256")):
    h, p = line.rstrip("\n").split("  ", 1)
    p = p[1:]
    total += 1
    q = os.path.join(d, "out", "files", "drive-scsi0-p2") + p
    ok = os.path.isfile(q) and hashlib.sha256(open(q, "rb").read()).hexdigest() == h
    if ok:
        same += 1
    elif p not in listed and not any(p.startswith(a + "/") for a in listed):
        unlisted += 1
print(f"garbage at {pct}%: {same} of {total} files identical ({100*same/total:.2f}%), "
      f"{len(listed)} listed damaged, {unlisted} differing but not listed")
if same < 0.9 * total:
    os.makedirs(os.path.join(d, "keep"), exist_ok=True)
    os.link(os.path.join(d, "bad", os.listdir(os.path.join(d, "bad"))[0]), os.path.join(d, "keep", f"{pct}-{os.getpid()}.zst"))
PY
done
