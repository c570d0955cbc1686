#!/usr/bin/env bash
# Compares salvage with the oracle bound on a clean .vma.zst or .vma.gz archive: for each
# percentage, 64 KiB of garbage is written there and the archive is read (a) by vzsalvage's
# salvage and (b) by an oracle that knows every piece of decoder state and only loses the content
# of the zstd blocks (deflate symbols) the garbage touched. What (b) reports damaged, no decoder
# can recover from this archive alone. For a .vma.zst, a second line per percentage adds the
# section oracle (codec/zstd/oracle2_test.go): it loses only the sections of a touched block that
# the garbage replaced (raw bytes, a Huffman stream's literals; the whole block when its sequences
# are hit) and their copies: the most that decoding the intact parts of touched blocks could give.
# The locatable oracle beside it also loses a touched raw block or raw literals section whole (no
# decoder can tell where random garbage starts inside incompressible raw bytes), and each line
# splits the section oracle's gain over the whole-block oracle into compressed and raw/RLE parts.
# Usage: scripts/oracle-bound.sh ARCHIVE.vma.{zst,gz} [PERCENT...]   (default 20 30 40 50 60 70 80)
set -euo pipefail
arc=$(realpath "$1"); shift
pcts=("${@:-20}"); [ $# -gt 0 ] || pcts=(20 30 40 50 60 70 80)
cd "$(dirname "$0")/.."
at=$(IFS=,; echo "${pcts[*]}")
pkg=./codec/zstd
case $arc in *.gz) pkg=./codec/gzip ;; esac
VZSALVAGE_ORACLE_ARCHIVE=$arc VZSALVAGE_ORACLE_AT=$at go test "$pkg" -run '^TestOracleBound$' -count=1 -timeout 1h -v |
  grep '^garbage at'
if [ "$pkg" = ./codec/zstd ]; then
  VZSALVAGE_ORACLE_ARCHIVE=$arc VZSALVAGE_ORACLE_AT=$at go test "$pkg" -run '^TestOracleSections$' -count=1 -timeout 1h -v |
    grep '^garbage at'
fi
