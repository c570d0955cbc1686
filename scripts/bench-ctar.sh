#!/usr/bin/env bash
# Times restoring a clean container backup (.tar.zst made by GNU tar with
# vzdump's flags from a generated tree, internal/testimg.ContainerTree)
# with vzsalvage against the stock procedure on the same archive, as a
# ratio (> 1.0 = vzsalvage is faster):
#   vzsalvage rescue -q ARCHIVE -o DIR          (reads the stream once,
#                                                 writing each file as it passes)
#   zstd -d -c ARCHIVE | tar -x (pct restore's flags)
# Usage: scripts/bench-ctar.sh [FILES]   (default 8000; built once in $BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-8000}
dir=${BENCH_DIR:-/tmp/vzsalvage-bench-ct}
mkdir -p "$dir"
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
arc="$dir/vzdump-lxc-101-2025_12_15-03_00_03.tar.zst"
if [ ! -s "$arc" ] || [ "$(cat "$dir/files" 2>/dev/null)" != "$files" ]; then
  echo "building a container tree of $files files and its archive..." >&2
  VZSALVAGE_BENCH_CT="$dir" VZSALVAGE_BENCH_CT_FILES="$files" go test -count=1 -run TestMakeBenchContainer ./rescue >/dev/null
  echo "$files" > "$dir/files"
fi
ls -l "$arc" >&2
cat "$arc" > /dev/null  # warm the page cache

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
# alternate the two (best of 5 each), each run into a fresh directory
# (deleting thousands of files just before creating as many slows ext4's
# inode allocation), deleted at the end
out="$dir/out"; rm -rf "$out"; mkdir -p "$out"
tt=999999; tv=999999
for i in 1 2 3 4 5; do
  t=$(secs sh -c "mkdir '$out/t$i'; zstd -q -d -c '$arc' | tar -x -p --numeric-owner --acls --xattrs --xattrs-include='user.*' --xattrs-include=security.capability -C '$out/t$i'")
  if (( $(echo "$t < $tt" | bc) )); then tt=$t; fi
  t=$(secs "$dir/vzsalvage" rescue -q "$arc" -o "$out/v$i")
  if (( $(echo "$t < $tv" | bc) )); then tv=$t; fi
done
rm -rf "$out"
printf 'archive: %s MiB compressed, %s MiB of tar\n' $(( $(stat -c %s "$arc") / 1048576 )) $(( $(zstd -q -d -c "$arc" | wc -c) / 1048576 ))
printf 'restore: vzsalvage rescue %.2fs vs zstd -d | tar -x %.2fs  ratio %.2fx (load average %s)\n' "$tv" "$tt" "$(echo "$tt / $tv" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
