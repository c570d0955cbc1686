#!/usr/bin/env bash
# Measures the merge of damaged copies of one archive (repair --copy, rescue --also COPY) at
# scale: a VM whose root ext4 (GPT, mke2fs -d) holds real files (parts of /usr, ~0.4 GB) and a
# 48 MiB incompressible file, archived as vzdump does (zstd --threads=1), ~200 MB. Each trial
# damages copies with seeded 64 KiB garbage runs and checks the repaired archive's SHA-256
# against the original's:
#   two     two copies, each hit once elsewhere              -> repaired, sha256 equal
#   three   three copies, each place hit in two of them
#           (one place with the same garbage in both)         -> repaired, sha256 equal
#   overlap two copies hit at overlapping places              -> not repaired, says so
#   rescue  rescue A --also COPY for the two-copy case        -> intact, root disk identical
#   second pass: the cost of rescue's second decoding pass (rescue --also OLDER)
# Times are wall seconds, with the CPU seconds (user+sys) in brackets: the machine may be shared.
# Usage: scripts/measure-copies.sh [SEED...]     (default: 1 2 3; "none": only the second pass)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MEASURE_DIR:-/tmp/vzsalvage-measure-copies}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
arc="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
if [ ! -s "$arc" ]; then
  src="$dir/src"
  rm -rf "$src"; mkdir -p "$src/usr/lib"
  mkdir -p "$src/usr/share"
  cp -a /usr/share/doc /usr/share/locale /usr/share/perl "$src/usr/share/" 2>/dev/null || true
  cp -a /usr/lib/python3* "$src/usr/lib/" 2>/dev/null || true
  python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(48<<20))' > "$src/random.bin"
  du -sh "$src" >&2
  rm -f "$dir/root.raw"; truncate -s 2G "$dir/root.raw"
  sgdisk -U 6f0c1d52-3f7e-4a1b-9c2d-0a1b2c3d4e5f -n1:2048:+8M -t1:ef00 -u1:0a1b2c3d-0000-4000-8000-000000000001 \
    -n2:0:0 -t2:8300 -c2:root -u2:0a1b2c3d-0000-4000-8000-000000000002 "$dir/root.raw" >/dev/null
  start=$(sgdisk -i2 "$dir/root.raw" | awk '/First sector/ {print $3}')
  end=$(sgdisk -i2 "$dir/root.raw" | awk '/Last sector/ {print $3}')
  E2FSPROGS_FAKE_TIME=1765767603 mke2fs -q -F -t ext4 -d "$src" -U 1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9 \
    -E offset=$((start * 512)),hash_seed=2c3d4e5f-6071-4829-9a3b-b5c6d7e8f9a0 "$dir/root.raw" $(((end - start + 1) / 2))k
  go run ./scripts/mkvma "$dir/root.raw:drive-scsi0" | zstd -q --threads=1 -c > "$arc"
  rm -rf "$src"
fi
size=$(stat -c %s "$arc")
want=$(sha256sum < "$arc" | cut -d' ' -f1)
echo "archive $((size / 1048576)) MiB ($size bytes), sha256 $want"

# hit FILE OFFSET SEED: 64 KiB of seeded garbage at OFFSET
hit() {
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
path, off, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(off)
    f.write(random.Random(seed).randbytes(65536))
PY
}
# copyto NAME: a fresh copy of the archive under the archive's own name
copyto() { mkdir -p "$dir/$1"; cp "$arc" "$dir/$1/$(basename "$arc")"; echo "$dir/$1/$(basename "$arc")"; }
# timed CMD...: runs CMD, prints "WALL s (CPU s)"
timed() {
  /usr/bin/time -f "%e %U %S" -o "$dir/time" "$@" > /dev/null || true
  tail -1 "$dir/time" | awk '{printf "%.1f s (%.1f s CPU)", $1, $2 + $3}'
}
# repair LABEL A COPY...: runs repair --copy, prints time, verdict, sha256 match
repair() {
  local label=$1 a=$2; shift 2
  local args=() c
  for c in "$@"; do args+=(--copy "$c"); done
  rm -f "$dir/fixed.vma.zst"
  local code=0
  /usr/bin/time -f "%e %U %S" -o "$dir/time" "$dir/vzsalvage" repair -q --json "$a" "${args[@]}" -o "$dir/fixed.vma.zst" > "$dir/repair.json" || code=$?
  local got="-"
  [ -s "$dir/fixed.vma.zst" ] && got=$(sha256sum < "$dir/fixed.vma.zst" | cut -d' ' -f1)
  python3 - "$dir/repair.json" "$label" "$code" "$(tail -1 "$dir/time" | awk '{printf "%.1f s (%.1f s CPU)", $1, $2 + $3}')" "$got" "$want" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r.get("merge") or {}
label, code, secs, got, want = sys.argv[2:]
why = "" if m.get("verified") else " (not verified)"
print(f"{label}: exit {code}, {secs}, {len(m.get('regions') or [])} places, {m.get('trials')} trial decodes, "
      f"verified {m.get('verified')}, sha256 {'equal' if got == want else 'differs' if got != '-' else 'no output'}{why}")
PY
}

for seed in ${@:-1 2 3}; do
  [ "$seed" = none ] && break
  echo "== seed $seed"
  read -r pa pb pc <<<"$(python3 -c "import random; r=random.Random($seed); print(*sorted(r.sample(range(2, 97), 3)))")"
  oa=$((size * pa / 100)); ob=$((size * pb / 100)); oc=$((size * pc / 100))
  a=$(copyto a); b=$(copyto b); c=$(copyto c)
  hit "$a" "$oa" "$((seed * 10 + 1))"; hit "$b" "$oc" "$((seed * 10 + 2))"
  repair "two copies (garbage at $pa % and $pc %)" "$a" "$b"
  # rescue A --also COPY: the merge first
  rm -rf "$dir/out"
  took=$(timed "$dir/vzsalvage" rescue -q "$a" --also "$b" -o "$dir/out")
  rawsum=$(sha256sum < "$dir/out/disks/disk-drive-scsi0.raw" | cut -d' ' -f1)
  origsum=$(sha256sum < "$dir/root.raw" | cut -d' ' -f1)
  echo "rescue A --also COPY: $took, root disk $([ "$rawsum" = "$origsum" ] && echo identical || echo DIFFERS)"
  # three copies: each place hit in two of them; at one place the same garbage twice
  a=$(copyto a); b=$(copyto b); c=$(copyto c)
  hit "$a" "$oa" "$((seed * 10 + 3))"; hit "$b" "$oa" "$((seed * 10 + 3))"
  hit "$b" "$ob" "$((seed * 10 + 4))"; hit "$c" "$ob" "$((seed * 10 + 5))"
  hit "$a" "$oc" "$((seed * 10 + 6))"; hit "$c" "$oc" "$((seed * 10 + 7))"
  repair "three copies (each of $pa %, $pb %, $pc % hit in two)" "$a" "$b" "$c"
  # overlap
  a=$(copyto a); b=$(copyto b)
  hit "$a" "$ob" "$((seed * 10 + 8))"; hit "$b" "$((ob + 32768))" "$((seed * 10 + 9))"
  repair "overlapping (at $pb % and 32 KiB later)" "$a" "$b"
  python3 -c "import json; print('  says:', json.load(open('$dir/repair.json'))['notes'])"
done

# The second decoding pass (rescue --also OLDER, rescue/donor.go) decodes the newest archive again
# from its start. Its cost: one more read of the whole archive. OLDER is another night's backup of
# the same disk (another UUID and time), the newest hit once.
older="$dir/older/vzdump-qemu-100-2025_12_14-03_00_03.vma.zst"
if [ ! -s "$older" ]; then
  mkdir -p "$dir/older"
  go run ./scripts/mkvma -seed 2 -ctime 1765681203 "$dir/root.raw:drive-scsi0" | zstd -q --threads=1 -c > "$older"
fi
a=$(copyto a)
hit "$a" "$((size * 37 / 100))" 99
echo "== second pass (garbage at 37 %)"
rm -rf "$dir/x"; echo "extract A (one pass, as the second pass makes): $(timed "$dir/vzsalvage" extract -q "$a" -o "$dir/x")"
rm -rf "$dir/x"; echo "extract OLDER (undamaged): $(timed "$dir/vzsalvage" extract -q "$older" -o "$dir/x")"
rm -rf "$dir/x" "$dir/out"; echo "rescue A alone: $(timed "$dir/vzsalvage" rescue -q "$a" -o "$dir/out")"
rm -rf "$dir/out"; echo "rescue A --also OLDER (first pass, OLDER, second pass, files): $(timed "$dir/vzsalvage" rescue -q "$a" --also "$older" -o "$dir/out")"
python3 -c "import json; r=json.load(open('$dir/out/report.json')); print('  redecode:', r['archives'][0].get('redecode'))"
