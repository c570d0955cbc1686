#!/usr/bin/env bash
# bench-zstd.sh: compares codec/zstd with the zstd CLI on a ~1 GiB file that
# looks like a disk image (tar of /usr, zero runs, random data), compressed
# the way vzdump does (zstd, no level flag). Prints MB/s and ratios:
#   clean path   (klauspost + our checksum)   vs  zstd -d -c > /dev/null
#   salvage path (our own decoder from start) vs  zstd -d -c > /dev/null
# Usage: scripts/bench-zstd.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
size_mib=${1:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building ~${size_mib} MiB of disk-like data in $tmp"
raw=$tmp/data.raw
# Repeat a tar of real files with zero runs and random data in between.
tar -cf "$tmp/usr.tar" --ignore-failed-read /usr/share/doc /usr/lib/python3* 2>/dev/null || true
tar_mib=$(( $(stat -c %s "$tmp/usr.tar") >> 20 ))
: > "$raw"
i=0
while [ $(( $(stat -c %s "$raw") >> 20 )) -lt "$size_mib" ]; do
	cat "$tmp/usr.tar" >> "$raw"
	head -c $((16 << 20)) /dev/zero >> "$raw"
	head -c $((4 << 20)) /dev/urandom >> "$raw"
	i=$((i + 1))
done
truncate -s $((size_mib << 20)) "$raw"
zst=$tmp/data.raw.zst
zstd -q -c "$raw" > "$zst"
rm -f "$raw" "$tmp/usr.tar"
bytes=$((size_mib << 20))
echo "compressed: $(stat -c %s "$zst") bytes (tar of ${tar_mib} MiB repeated $i times)"

(cd "$root" && go test -c -o "$tmp/zstd.test" ./codec/zstd)

secs() { # run a command, print elapsed seconds
	local s e
	s=$(date +%s.%N)
	"$@" > /dev/null
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
ours() { ZSTD_BENCH_FILE=$zst ZSTD_BENCH_MODE=$1 "$tmp/zstd.test" -test.run '^TestBenchFile$' | awk '/^BENCH/ {print $4}'; }

cat "$zst" > /dev/null # warm the page cache
cli=$(secs sh -c "zstd -q -d -c '$zst' > /dev/null")
clean=$(ours clean)
salv=$(ours salvage)
mbs() { echo "scale=0; $bytes / 1048576 / $1" | bc -l; }
printf 'zstd CLI     %6.2f s  %5s MiB/s\n' "$cli" "$(mbs "$cli")"
printf 'clean path   %6.2f s  %5s MiB/s  ratio vs CLI %.2f\n' "$clean" "$(mbs "$clean")" "$(echo "$cli / $clean" | bc -l)"
printf 'salvage path %6.2f s  %5s MiB/s  ratio vs CLI %.2f\n' "$salv" "$(mbs "$salv")" "$(echo "$cli / $salv" | bc -l)"
