#!/usr/bin/env bash
# Benchmarks vzsalvage against the CLIs on the same archives, in one run, as
# ratios (the anchor's time / vzsalvage's: > 1.0 = vzsalvage is faster):
#   verify  vs  zstd -d -c > /dev/null      extract vs  zstd -d -o FILE
#   rescue  vs  zstd -d -o FILE             protect vs  zstd -d -c > /dev/null
#   repack  vs  zstd -c IMAGE > /dev/null
# on an incompressible-heavy and a compressible-heavy disk (scripts/mkdisk
# -random 60 and -random 0), and
#   verify .vma.gz  vs  gzip -dc > /dev/null   verify .vma.lzo  vs  lzop -dc > /dev/null
# on the default mix. Each line gives the medians of ROUNDS alternating runs
# (anchor, vzsalvage, anchor, ...): wall seconds, CPU seconds (user+sys),
# and vzsalvage's peak RSS. Then the peak RSS of verify, extract and rescue
# on badly damaged archives (3,000 garbage runs, and 30 spread evenly; their
# decoding speed is the salvage path's) and on the archive of a 1 TiB sparse disk.
#
# The load average is printed before and after: on a shared machine wall
# times are noisy (a process with more threads also gets a larger share of
# a busy machine); the CPU seconds do not depend on the load as much.
# Usage: scripts/bench.sh [DISK_MIB]   (default 1024; ROUNDS=3; archives are
# built once in $BENCH_DIR; ONLY="verify extract" runs a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${ROUNDS:-3}
only=${ONLY:-"verify extract rescue protect repack gz lzo damaged sparse"}
dir=${BENCH_DIR:-/tmp/vzsalvage-bench}
mkdir -p "$dir"
for tool in mkdisk mkvma; do go build -o "$dir/$tool" "./scripts/$tool"; done
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
vzs=$dir/vzsalvage
name() { echo "vzdump-qemu-$1-2025_12_15-03_00_03.vma$2"; }

# archive VMID RANDOM EXT...: builds the disk's archives once
archive() {
  local id=$1 random=$2; shift 2
  local stamp="$dir/$id.size"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$mib $random" ] && [ -s "$dir/$(name "$id" "$1")" ]; then return; fi
  echo "building a ${mib} MiB disk (-random $random) and its archives..." >&2
  "$dir/mkdisk" -size "${mib}M" -seed "$id" -random "$random" > "$dir/disk.raw"
  "$dir/mkvma" "$dir/disk.raw:drive-scsi0" > "$dir/raw.vma"
  for ext in "$@"; do
    case $ext in
      .zst) zstd -q --threads=1 -c < "$dir/raw.vma" > "$dir/$(name "$id" .zst)" ;;
      .gz) gzip --rsyncable -c < "$dir/raw.vma" > "$dir/$(name "$id" .gz)" ;;
      .lzo) lzop -c < "$dir/raw.vma" > "$dir/$(name "$id" .lzo)" ;;
    esac
  done
  rm -f "$dir/disk.raw" "$dir/raw.vma"
  echo "$mib $random" > "$stamp"
}

# run CMD...: one timed run; appends "wall cpu rss_kib" to $dir/t
run() {
  /usr/bin/time -f '%e %U %S %M' -o "$dir/t1" "$@" > /dev/null 2>&1 || true
  # (time notes a non-zero exit, as of a damaged archive, on a line before)
  awk '/^[0-9.]+ /{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$dir/t1" >> "$dir/t"
}
med() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# pair LABEL ANCHOR_LABEL "ANCHOR CMD" "PREP CMD" OURS...: alternating runs, one line
pair() {
  local label=$1 alabel=$2 anchor=$3 prep=$4; shift 4
  : > "$dir/ta"; : > "$dir/to"
  for _ in $(seq "$rounds"); do
    sh -c "$prep"; : > "$dir/t"; run sh -c "$anchor"; cat "$dir/t" >> "$dir/ta"
    sh -c "$prep"; : > "$dir/t"; run "$@"; cat "$dir/t" >> "$dir/to"
  done
  local aw ac ow oc rss
  aw=$(cut -d' ' -f1 "$dir/ta" | med); ac=$(cut -d' ' -f2 "$dir/ta" | med)
  ow=$(cut -d' ' -f1 "$dir/to" | med); oc=$(cut -d' ' -f2 "$dir/to" | med)
  rss=$(cut -d' ' -f3 "$dir/to" | sort -n | tail -1)
  printf '  %-8s %6.2fs wall %6.2fs cpu | %-22s %6.2fs wall %6.2fs cpu | ratio %5.2fx wall %5.2fx cpu | peak RSS %4d MiB\n' \
    "$label" "$ow" "$oc" "$alabel" "$aw" "$ac" "$(echo "$aw / $ow" | bc -l)" "$(echo "$ac / $oc" | bc -l)" $((rss / 1024))
}
has() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $rounds alternating rounds, medians"
out=$dir/out
for kind in inc:101:60 cmp:102:0; do
  IFS=: read -r label id random <<< "$kind"
  archive "$id" "$random" .zst
  arc=$dir/$(name "$id" .zst)
  cat "$arc" > /dev/null # warm the page cache
  printf '%s: %s MiB disk (-random %s), archive %d MiB\n' "$label" "$mib" "$random" $(( $(stat -c %s "$arc") >> 20 ))
  if has verify; then pair verify "zstd -d -c >/dev/null" "zstd -q -d -c '$arc' > /dev/null" : "$vzs" verify -q "$arc"; fi
  if has extract; then pair extract "zstd -d -o FILE" "zstd -q -f -d '$arc' -o '$dir/z.raw'" "rm -rf '$out' '$dir/z.raw'" "$vzs" extract -q "$arc" -o "$out"; fi
  if has rescue; then pair rescue "zstd -d -o FILE" "zstd -q -f -d '$arc' -o '$dir/z.raw'" "rm -rf '$out' '$dir/z.raw'" "$vzs" rescue -q "$arc" -o "$out"; fi
  if has protect; then pair protect "zstd -d -c >/dev/null" "zstd -q -d -c '$arc' > /dev/null" "rm -rf '$dir/sc'; mkdir '$dir/sc'" "$vzs" protect -q --sidecar-dir "$dir/sc" "$arc"; fi
  if has repack; then
    rm -rf "$out"; "$vzs" extract -q "$arc" -o "$out" > /dev/null || true
    re=$dir/$(name 200 .zst)
    pair repack "zstd -c IMAGE >/dev/null" "zstd -q -c '$out/disk-drive-scsi0.raw' > /dev/null" "rm -f '$re'" "$vzs" repack -q "$out" -o "$re"
    rm -f "$re"
  fi
  rm -rf "$out" "$dir/z.raw" "$dir/sc"
done

if has gz || has lzo; then
  archive 100 16 .gz .lzo
  for ext in gz lzo; do
    has $ext || continue
    arc=$dir/$(name 100 .$ext)
    cat "$arc" > /dev/null
    dec=gzip; [ "$ext" = lzo ] && dec=lzop
    printf '%s: %s MiB disk (default mix), archive %d MiB\n' "$ext" "$mib" $(( $(stat -c %s "$arc") >> 20 ))
    pair verify "$dec -dc >/dev/null" "$dec -dc '$arc' > /dev/null" : "$vzs" verify -q "$arc"
    pair extract "$dec -dc >FILE" "$dec -dc '$arc' > '$dir/z.raw'" "rm -rf '$out' '$dir/z.raw'" "$vzs" extract -q "$arc" -o "$out"
    rm -rf "$out" "$dir/z.raw"
  done
fi

# peak RSS and time of one run of each command
once() {
  local label=$1; shift
  rm -rf "$out"; : > "$dir/t"; run "$@"
  read -r w c r < "$dir/t"
  printf '  %-8s %6.2fs wall %6.2fs cpu | peak RSS %4d MiB\n' "$label" "$w" "$c" $((r / 1024))
}
# damaged N MIN MAX [even]: the cmp archive with N garbage runs of MIN to MAX
# bytes at seeded random places (or spread evenly), through verify, extract
# and rescue
damaged() {
  local bad=$dir/$(name 103 .zst)
  python3 - "$dir/$(name 102 .zst)" "$bad" "$1" "$2" "$3" "${4:-}" <<'PY'
import random, sys
b = bytearray(open(sys.argv[1], 'rb').read()); r = random.Random(11)
runs, lo, hi = map(int, sys.argv[3:6])
for i in range(runs):
    n = r.randrange(lo, hi + 1)
    if sys.argv[6] == 'even':
        at = 4096 + (len(b) - 4096 - n) * (2 * i + 1) // (2 * runs)
    else:
        at = r.randrange(4096, len(b) - n)
    b[at:at + n] = r.randbytes(n)
open(sys.argv[2], 'wb').write(b)
PY
  printf 'damaged: the cmp archive with %s garbage runs (%s to %s bytes%s)\n' "$1" "$2" "$3" "${4:+, spread evenly}"
  once verify "$vzs" verify -q "$bad"
  once extract "$vzs" extract -q "$bad" -o "$out"
  if [ -s "$out/damage.json" ]; then
    python3 - "$out/damage.json" "$mib" "$dir/t" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); d = r['devices'][0]
w = float(open(sys.argv[3]).read().split()[0])
print(f"           {len(d['damage'])} damage ranges, clusters {d['clusters']}, {int(sys.argv[2]) / w:.0f} MiB/s of disk written")
PY
  fi
  once rescue "$vzs" rescue -q "$bad" -o "$out"
  rm -rf "$out" "$bad"
}
if has damaged; then
  archive 102 0 .zst
  damaged 3000 64 4096 # many small runs: most of the disk lost
  damaged 30 4096 4096 even # a few: taints copied all over the window
fi
if has sparse; then
  sp=$dir/$(name 104 .zst)
  if [ ! -s "$sp" ]; then
    echo "building the archive of a 1 TiB sparse disk (64 MiB of data)..." >&2
    truncate -s 0 "$dir/sparse.raw"; truncate -s 1T "$dir/sparse.raw"
    for i in $(seq 0 63); do "$dir/mkdisk" -size 1M -seed "$i" | dd of="$dir/sparse.raw" bs=1M seek=$((i * 16381 + 7)) conv=notrunc status=none; done
    "$dir/mkvma" "$dir/sparse.raw:drive-scsi0" | zstd -q --threads=1 -c > "$sp"
    rm -f "$dir/sparse.raw"
  fi
  printf 'sparse: a 1 TiB disk holding 64 MiB, archive %d MiB\n' $(( $(stat -c %s "$sp") >> 20 ))
  once verify "$vzs" verify -q "$sp"
  once extract "$vzs" extract -q "$sp" -o "$out"
  once rescue "$vzs" rescue -q "$sp" -o "$out"
  once protect "$vzs" protect -q --sidecar-dir "$dir" "$sp"
  rm -rf "$out" "$sp.vzsalvage" "$dir/$(basename "$sp").vzsalvage"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
