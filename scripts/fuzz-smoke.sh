#!/usr/bin/env bash
# Runs every fuzz target of vzsalvage for a few seconds each: a smoke test
# that the targets still run and find nothing quickly. New inputs a run finds
# interesting are minimized for at most a short while (FUZZ_MINIMIZE), so the
# time goes to fuzzing, not to shrinking inputs.
#
#   scripts/fuzz-smoke.sh                   every target, FUZZ_TIME each (default 5s)
#   FUZZ_TIME=60s scripts/fuzz-smoke.sh ./vma   the targets of some packages
#
# scripts/test.sh runs it when VZSALVAGE_FUZZ_SMOKE is set.
set -euo pipefail
cd "$(dirname "$0")/.."

time=${FUZZ_TIME:-5s}
minimize=${FUZZ_MINIMIZE:-200x}
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
fi
failed=0
for pkg in "${pkgs[@]}"; do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    start=$(date +%s)
    if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -fuzzminimizetime "$minimize" -parallel 2 "$pkg" 2>&1); then
      echo "ok    $pkg $target ($(( $(date +%s) - start ))s)"
    else
      echo "FAIL  $pkg $target"
      echo "$out" | tail -30
      failed=1
    fi
  done
done
exit $failed
