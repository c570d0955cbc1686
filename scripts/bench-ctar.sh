#!/usr/bin/env bash
# Times restoring a clean container backup (.tar.zst made by GNU tar with
# vzdump's flags from a generated tree, internal/testimg.ContainerTree)
# with vzsalvage against the stock procedure on the same archive, as a
# ratio (> 1.0 = vzsalvage is faster):
#   vzsalvage rescue -q ARCHIVE -o DIR          (reads the stream once,
#                                                 writing each file as it passes)
#   zstd -d -c ARCHIVE | tar -x (pct restore's flags)
# Usage: scripts/bench-ctar.sh [FILES]   (default 8000; built once in $BENCH_DIR)
# ROUNDS (default 5) alternating runs of each; the restored trees go under
# $BENCH_OUT (default $BENCH_DIR/out; a tmpfs there leaves the disk's own
# cost out). Wall and CPU (user+sys) seconds: best and median of each.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-8000}
rounds=${ROUNDS:-5}
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

# alternate the two, each run into a fresh directory (deleting thousands
# of files just before creating as many slows ext4's inode allocation),
# deleted at the end
out=${BENCH_OUT:-$dir/out}/bench-ctar.$$
rm -rf "$out"; mkdir -p "$out"
times="$out/times"
load0=$(cut -d' ' -f1 /proc/loadavg)
for i in $(seq "$rounds"); do
  mkdir "$out/t$i"
  /usr/bin/time -a -o "$times" -f "tar %e %U %S" sh -c "zstd -q -d -c '$arc' | tar -x -p --numeric-owner --acls --xattrs --xattrs-include='user.*' --xattrs-include=security.capability -C '$out/t$i'" || true
  /usr/bin/time -a -o "$times" -f "vzs %e %U %S" "$dir/vzsalvage" rescue -q "$arc" -o "$out/v$i" >/dev/null 2>&1 || true
done
# best_median: best and median of column (wall, or cpu = user+sys) for one command
best_median() {
  grep "^$1 " "$times" | awk -v c="$2" '{print (c == "wall") ? $2 : $3 + $4}' | sort -n |
    awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f", v[1], m}'
}
read -r tw tmw <<<"$(best_median tar wall)"; read -r vw vmw <<<"$(best_median vzs wall)"
read -r tc tmc <<<"$(best_median tar cpu)"; read -r vc vmc <<<"$(best_median vzs cpu)"
rm -rf "$out"
printf 'archive: %s MiB compressed, %s MiB of tar; %s rounds, load average %s before, %s after\n' \
  $(( $(stat -c %s "$arc") / 1048576 )) $(( $(zstd -q -d -c "$arc" | wc -c) / 1048576 )) "$rounds" "$load0" "$(cut -d' ' -f1 /proc/loadavg)"
printf 'wall (best/median): vzsalvage rescue %.2f/%.2fs vs zstd -d | tar -x %.2f/%.2fs  ratio %.2fx/%.2fx\n' \
  "$vw" "$vmw" "$tw" "$tmw" "$(echo "$tw / $vw" | bc -l)" "$(echo "$tmw / $vmw" | bc -l)"
printf 'cpu  (best/median): vzsalvage rescue %.2f/%.2fs vs zstd -d | tar -x %.2f/%.2fs  ratio %.2fx/%.2fx\n' \
  "$vc" "$vmc" "$tc" "$tmc" "$(echo "$tc / $vc" | bc -l)" "$(echo "$tmc / $vmc" | bc -l)"
