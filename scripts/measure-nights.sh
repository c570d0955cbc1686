#!/usr/bin/env bash
# Measures the cost of a donor re-decode at scale: two nights of a VM whose root ext4 (GPT,
# mke2fs -d of parts of /usr, ~1 GiB of files on a 2 GiB disk) changed in place between them
# (20 files with a 4 KiB page rewritten, same sizes, so the same layout), plus a bare XFS data
# disk and an efidisk, each archived as vzdump does (zstd --threads=1) with another UUID, time and
# cluster order. The newest is hit by a 64 KiB garbage run at PCT % of its length, the older at
# 60 %. For each PCT: wall seconds and peak RSS of `rescue NEWEST` and `rescue NEWEST --also OLDER`,
# and what the second pass reported (the machine's other load shows in the wall seconds more than in
# the CPU seconds).
# Usage: scripts/measure-nights.sh [PCT...]   (MEASURE_DIR, default /tmp/vzsalvage-measure-nights;
# VZSALVAGE=BINARY measures that binary instead of one built from this checkout; MEASURE_OUT, default
# MEASURE_DIR, is where the rescues write: a tmpfs such as /dev/shm/x leaves the host filesystem out)
#
# Every rescue writes into a fresh directory, and the outputs are removed only when the script ends:
# on an ext4 without a journal (this machine's root) the kernel skips, inode by inode, the inodes
# freed in the last 60-300 s (fs/ext4/ialloc.c recently_deleted), so rescuing right after an
# `rm -rf` of the previous output's ~16,000 files costs up to 16 s more system CPU in openat and
# mkdirat. Other processes' deletions count too (a test run just before cost 11.7 s sys where a
# tmpfs cost 1.2 s): for comparable CPU seconds on a shared machine use MEASURE_OUT=/dev/shm/NAME
# (each run keeps ~0.8 GiB there until the script ends). The sys seconds are printed apart from
# the user seconds for that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MEASURE_DIR:-/tmp/vzsalvage-measure-nights}
mkdir -p "$dir"
if [ -n "${VZSALVAGE:-}" ]; then cp "$VZSALVAGE" "$dir/vzsalvage"; else go build -o "$dir/vzsalvage" ./cmd/vzsalvage; fi
old="$dir/vzdump-qemu-100-2025_12_14-03_00_03.vma.zst"
new="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
if [ ! -s "$new" ]; then
  export E2FSPROGS_FAKE_TIME=1765767603
  src="$dir/src"
  rm -rf "$src"; mkdir -p "$src/usr"
  cp -a /usr/share/doc /usr/share/locale /usr/share/perl /usr/lib/python3* "$src/usr/" 2>/dev/null || true
  find "$src" -exec touch -h -d @1765767603 {} +
  truncate -s 2G "$dir/gpt.raw"
  sgdisk -n1:2048:+8M -t1:ef00 -n2:0:0 -t2:8300 -c2:root "$dir/gpt.raw" >/dev/null
  start=$(sgdisk -i2 "$dir/gpt.raw" | awk '/First sector/ {print $3}')
  end=$(sgdisk -i2 "$dir/gpt.raw" | awk '/Last sector/ {print $3}')
  mkroot() {
    cp --sparse=always "$dir/gpt.raw" "$2"
    mke2fs -q -F -t ext4 -d "$1" -U 6f0c1d52-3f7e-4a1b-9c2d-0a1b2c3d4e5f -E offset=$((start * 512)),hash_seed=1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9 \
      "$2" $(((end - start + 1) / 2))k
  }
  mkroot "$src" "$dir/root-old.raw"
  # the newest night: 20 files of at least 64 KiB with one 4 KiB page rewritten in place
  python3 - "$src" <<'PY'
import os, random, sys
rng = random.Random(7)
files = []
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        p = os.path.join(d, f)
        if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) >= 65536:
            files.append(p)
files.sort()
for p in rng.sample(files, 20):
    n = os.path.getsize(p)
    page = rng.randrange(n // 4096)
    with open(p, "r+b") as f:
        f.seek(page * 4096)
        f.write(b"page rewritten on the newest night\n" + rng.randbytes(4096 - 35))
PY
  find "$src" -exec touch -h -d @1765767603 {} +
  mkroot "$src" "$dir/root-new.raw"
  (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$dir/newest.sha256"
  truncate -s 300M "$dir/data.raw"; mkfs.xfs -q -f -m uuid=0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 "$dir/data.raw"
  head -c 540672 /dev/zero | tr '\0' '\377' > "$dir/efi.raw"
  go run ./scripts/mkvma -seed 1 -ctime 1765681203 "$dir/efi.raw:drive-efidisk0" "$dir/root-old.raw:drive-scsi0" "$dir/data.raw:drive-scsi1" |
    zstd -q --threads=1 -c > "$old"
  go run ./scripts/mkvma -seed 2 -ctime 1765767603 "$dir/efi.raw:drive-efidisk0" "$dir/root-new.raw:drive-scsi0" "$dir/data.raw:drive-scsi1" |
    zstd -q --threads=1 -c > "$new"
  sha256sum "$dir/root-new.raw" | cut -d' ' -f1 > "$dir/root-new.sha256"
fi
echo "newest $(($(stat -c %s "$new") / 1048576)) MiB, older $(($(stat -c %s "$old") / 1048576)) MiB"
garble() { # FILE PCT SEED
  local size; size=$(stat -c %s "$1")
  python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($3).randbytes(65536))" |
    dd of="$1" bs=1 seek=$((size * $2 / 100)) conv=notrunc status=none
}
mkdir -p "$dir/bad" "${MEASURE_OUT:-$dir}"
outs=$(mktemp -d "${MEASURE_OUT:-$dir}/out.XXXXXX")
trap 'rm -rf "$outs"' EXIT
cp "$old" "$dir/bad/"; garble "$dir/bad/$(basename "$old")" 60 2
for pct in "${@:-30}"; do
  cp "$new" "$dir/bad/"; garble "$dir/bad/$(basename "$new")" "$pct" 1
  for also in "" "--also $dir/bad/$(basename "$old")"; do
    out="$outs/$pct${also:+-also}"
    s=$(date +%s.%N)
    # shellcheck disable=SC2086
    /usr/bin/time -o "$dir/rss" -f "%M %U %S" "$dir/vzsalvage" rescue -q "$dir/bad/$(basename "$new")" $also -o "$out" >/dev/null 2>&1 || true
    read -r kb us ss < <(tail -1 "$dir/rss")
    e=$(date +%s.%N)
    same=$(sha256sum "$out/disks/disk-drive-scsi0.raw" | cut -d' ' -f1)
    python3 - "$out" "$pct" "${also:+--also}" "$(echo "$e - $s" | bc)" "$kb" "$us" "$ss" "$([ "$same" = "$(cat "$dir/root-new.sha256")" ] && echo yes || echo no)" <<'PY'
import json, os, sys
out, pct, also, secs, kb, us, ss, same = sys.argv[1:]
rep = json.load(open(os.path.join(out, "report.json")))
rd = rep["archives"][0].get("redecode") or {}
print(f"garbage at {pct}% rescue{' --also' if also else ''}: {float(secs):.1f} s ({float(us):.1f} s user + {float(ss):.1f} s sys CPU), peak RSS {int(kb)//1024} MiB, "
      f"{len(rep['damaged_files'])} files listed damaged, root disk identical: {same}, "
      f"redecode passes={rd.get('passes')} verified={rd.get('verified')} donated={rd.get('donated_bytes')} resumed at stream {rd.get('resumed_at', 0)} / file {rd.get('resumed_input', 0)}")
PY
  done
done
