#!/usr/bin/env bash
# Benchmarks vzsalvage's clean path against the zstd CLI on the same archive,
# as ratios measured in one run (> 1.0 = vzsalvage is faster):
#   verify  vs  zstd -d -c > /dev/null
#   extract vs  zstd -d -o FILE
# and the peak RSS of both vzsalvage commands.
# Usage: scripts/bench.sh [SIZE_MIB]   (default 1200; the archive is built once in $BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1200}
dir=${BENCH_DIR:-/tmp/vzsalvage-bench}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
arc="$dir/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"
if [ ! -s "$arc" ] || [ "$(cat "$dir/size" 2>/dev/null)" != "$size_mib" ]; then
  echo "building a ${size_mib} MiB disk (a tar of /usr: binaries, libraries, text) and its archive..." >&2
  # a realistic guest disk: real files, some zero runs between them
  (set +o pipefail; tar cf - --exclude="*.a" /usr/lib /usr/share /usr/bin 2>/dev/null | head -c $((size_mib * 1024 * 1024 * 85 / 100)) > "$dir/disk.raw")
  truncate -s $((size_mib * 1024 * 1024)) "$dir/disk.raw"
  go run ./scripts/mkvma "$dir/disk.raw:drive-scsi0" | zstd -q --threads=1 -c > "$arc"
  echo "$size_mib" > "$dir/size"
  rm -f "$dir/disk.raw"
fi
ls -l "$arc" >&2
cat "$arc" > /dev/null  # warm the page cache

source scripts/benchlib.sh
out="$dir/out"
tz=$(best sh -c "zstd -q -d -c '$arc' > /dev/null")
tv=$(best "$dir/vzsalvage" verify -q "$arc")
tzo=$(best sh -c "rm -f '$dir/z.raw'; zstd -q -d '$arc' -o '$dir/z.raw'")
te=$(best sh -c "rm -rf '$out'; '$dir/vzsalvage' extract -q '$arc' -o '$out'")
rv=$(rss "$dir/vzsalvage" verify -q "$arc")
rm -rf "$out"; re=$(rss "$dir/vzsalvage" extract -q "$arc" -o "$out")
# repack the extracted disk vs zstd -c of the same raw image
tzc=$(best sh -c "zstd -q -c '$out/disk-drive-scsi0.raw' > /dev/null")
tr=$(best sh -c "rm -f '$dir/re.vma.zst'; '$dir/vzsalvage' repack -q '$out' -o '$dir/vzdump-qemu-100-2025_12_16-00_00_00.vma.zst'")
rr=$(rss "$dir/vzsalvage" repack -q "$out" -o "$dir/vzdump-qemu-100-2025_12_16-00_00_00.vma.zst")
rm -rf "$out" "$dir/z.raw" "$dir/vzdump-qemu-100-2025_12_16-00_00_00.vma.zst"
printf 'archive: %s MiB compressed, %s MiB disk\n' $(( $(stat -c %s "$arc") / 1048576 )) "$size_mib"
printf 'verify : %.2fs vs zstd -d -c >/dev/null %.2fs  ratio %.2fx  peak RSS %d MiB\n' "$tv" "$tz" "$(echo "$tz / $tv" | bc -l)" $((rv / 1024))
printf 'extract: %.2fs vs zstd -d -o FILE %.2fs  ratio %.2fx  peak RSS %d MiB\n' "$te" "$tzo" "$(echo "$tzo / $te" | bc -l)" $((re / 1024))
printf 'repack : %.2fs vs zstd -c IMAGE >/dev/null %.2fs  ratio %.2fx  peak RSS %d MiB\n' "$tr" "$tzc" "$(echo "$tzc / $tr" | bc -l)" $((rr / 1024))
