#!/usr/bin/env bash
# Compares salvage with the oracle bound on a clean .vma.zst archive: for each percentage, 64 KiB
# of garbage is written there and the archive is read (a) by vzsalvage's salvage and (b) by an
# oracle that knows every piece of decoder state and only loses the content of the zstd blocks
# the garbage touched. What (b) reports damaged, no decoder can recover from this archive alone.
# Usage: scripts/oracle-bound.sh ARCHIVE.vma.zst [PERCENT...]   (default 20 30 40 50 60 70 80)
set -euo pipefail
arc=$(realpath "$1"); shift
pcts=("${@:-20}"); [ $# -gt 0 ] || pcts=(20 30 40 50 60 70 80)
cd "$(dirname "$0")/.."
at=$(IFS=,; echo "${pcts[*]}")
VZSALVAGE_ORACLE_ARCHIVE=$arc VZSALVAGE_ORACLE_AT=$at go test ./codec/zstd -run '^TestOracleBound$' -count=1 -v |
  grep '^garbage at'
