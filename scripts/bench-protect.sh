#!/usr/bin/env bash
# Measures protect on a ~300 MB archive made by the real tools from a seed
# (scripts/mkdisk, scripts/mkvma, the zstd CLI):
#   protect vs  zstd -d -c > /dev/null  (a ratio from one run; > 1.0 = protect is faster)
#   protect's peak RSS and the sidecar's size
#   repair of a 64 KiB garbage run + a zeroed 4 KiB page + a bit flip (SHA-256 equal?)
#   a garbage run beyond the parity: damaged clusters located with and without the sidecar
# Usage: scripts/bench-protect.sh [DISK_MIB]   (default 850: a ~315 MB archive; built once in $BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-850}
dir=${BENCH_DIR:-/tmp/vzsalvage-bench-protect}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
arc="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
if [ ! -s "$arc" ] || [ "$(cat "$dir/size" 2>/dev/null)" != "$size_mib" ]; then
  go run ./scripts/mkdisk -size "${size_mib}M" -seed 1 > "$dir/disk.raw"
  go run ./scripts/mkvma "$dir/disk.raw:drive-scsi0" | zstd -q --threads=1 -c > "$arc"
  echo "$size_mib" > "$dir/size"
  rm -f "$dir/disk.raw"
fi
cat "$arc" > /dev/null
sc="$dir/sc"; rm -rf "$sc"; mkdir -p "$sc"
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
tz=999; tp=999
for _ in 1 2 3; do
  t=$(secs sh -c "zstd -q -d -c '$arc' > /dev/null"); if (( $(echo "$t < $tz" | bc) )); then tz=$t; fi
  t=$(secs "$dir/vzsalvage" protect -q --sidecar-dir "$sc" "$arc"); if (( $(echo "$t < $tp" | bc) )); then tp=$t; fi
done
rss=$(/usr/bin/time -f %M "$dir/vzsalvage" protect -q --sidecar-dir "$sc" "$arc" 2>&1 >/dev/null | tail -1)
asize=$(stat -c %s "$arc"); ssize=$(stat -c %s "$sc/$(basename "$arc").vzsalvage")
printf 'archive: %d bytes; sidecar %d bytes = %.2f %%\n' "$asize" "$ssize" "$(echo "100 * $ssize / $asize" | bc -l)"
printf 'protect: %.2fs vs zstd -d -c >/dev/null %.2fs: ratio %.2fx; peak RSS %d MiB\n' "$tp" "$tz" "$(echo "$tz / $tp" | bc -l)" $((rss / 1024))

# repair: the issue's mix of damage
bad="$dir/bad/$(basename "$arc")"; mkdir -p "$dir/bad"; cp "$arc" "$bad"; cp "$sc/$(basename "$arc").vzsalvage" "$bad.vzsalvage"
python3 - "$bad" <<'PY'
import random, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); r = random.Random(7)
g = r.randrange(1 << 20, len(b) - 65536); b[g:g+65536] = bytes(r.randrange(256) for _ in range(65536))
z = r.randrange(1 << 20, len(b) - 4096) & ~4095; b[z:z+4096] = bytes(4096)
f = r.randrange(1 << 20, len(b)); b[f] ^= 1 << r.randrange(8)
open(p, 'wb').write(b); print(f"damage: 64 KiB garbage at {g}, zeroed page at {z}, bit flip at {f}")
PY
t=$(secs "$dir/vzsalvage" repair -q "$bad" -o "$dir/fixed.vma.zst")
("$dir/vzsalvage" repair -q "$bad" -o "$dir/fixed.vma.zst" || true) | sed 's/^/  /'
if [ "$(sha256sum < "$arc")" = "$(sha256sum < "$dir/fixed.vma.zst")" ]; then echo "repair: SHA-256 equal to the original (${t}s)"; else echo "repair: DIFFERS"; fi

# beyond the parity: a 24 MiB garbage run in the middle
python3 - "$bad" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); at = len(b) // 2
b[at:at + (24 << 20)] = bytes((i * 7 + 3) & 255 for i in range(24 << 20)); open(p, 'wb').write(b)
PY
("$dir/vzsalvage" repair -q "$bad" || true) | sed 's/^/  /' | cut -c1-200
with=$( ("$dir/vzsalvage" verify -q --json "$bad" || true) | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(d["clusters"]["tainted"]+d["clusters"]["lost"] for d in r["devices"]))')
without=$( ("$dir/vzsalvage" verify -q --json --no-sidecar "$bad" || true) | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(d["clusters"]["tainted"]+d["clusters"]["lost"] for d in r["devices"]))')
echo "24 MiB garbage: damaged clusters flagged: $with with the sidecar, $without without"
rm -rf "$dir/bad" "$dir/fixed.vma.zst"*
