#!/bin/sh
# bench-ext4.sh: copy a 3,000-file ext4 image out with vzsalvage's ext4
# reader and with `debugfs -c -R "rdump / DIR"`, and print the speed ratio
# (debugfs time / ours: above 1.0 means we are faster).
#
# Usage: scripts/bench-ext4.sh [COUNT]   (default 5 runs of 5 copies each)
# Set TMPDIR to choose where the copies are written (e.g. /dev/shm to time
# the readers rather than the destination filesystem).
set -eu
count=${1:-5}
cd "$(dirname "$0")/.."
out=$(go test ./fs/ext4/ -run '^$' -bench '^BenchmarkCopyTree$' -benchtime 5x -count "$count")
echo "$out" | grep '^BenchmarkCopyTree'
echo "$out" | awk '
	/^BenchmarkCopyTree\/vzsalvage/ { ours += $3; n++ }
	/^BenchmarkCopyTree\/debugfs/   { dfs += $3; m++ }
	END {
		if (n == 0 || m == 0) { print "no results"; exit 1 }
		printf "vzsalvage %.1f ms, debugfs %.1f ms per copy (mean of %d): ratio %.2fx\n",
			ours / n / 1e6, dfs / m / 1e6, n, (dfs / m) / (ours / n)
	}'
