#!/usr/bin/env bash
# Measures salvage of .vma.gz and .vma.lzo archives as vzdump writes them (gzip --rsyncable,
# pigz --rsyncable, lzop), against the stock procedure. The disk is generated from a seed
# (scripts/mkdisk: text, structured binary, incompressible data and free space; the same bytes on
# every machine), archived by the real CLIs reading a pipe (about 300 MB compressed with the
# default 850 MiB disk), then damaged by a 64 KiB run of garbage (seeded too) at 50 % of the file
# (or at the percentages given), and cut at 50 %:
#   stock:  gzip -dc | vmacheck.py - -x DIR   (lzop -dc for .lzo; the team's strict checker
#           standing in for Proxmox's 'vma extract')
#   ours:   vzsalvage extract
# both compared with the original disk, 64 KiB cluster by cluster (scripts/cmpimg).
# Usage: scripts/measure-salvage-gzlzo.sh [PERCENT...]   (default 50)
# Environment: DISK_MIB (850), SEED (1), COMPRESSORS ("gzip pigz lzop"), MEASURE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MEASURE_DIR:-/tmp/vzsalvage-measure-gzlzo}
mib=${DISK_MIB:-850}
seed=${SEED:-1}
mkdir -p "$dir"
for tool in mkdisk mkvma cmpimg; do go build -o "$dir/$tool" "./scripts/$tool"; done
go build -o "$dir/vzsalvage" ./cmd/vzsalvage
checker=
for c in "${VZSALVAGE_SHARED:-../shared}/tools/vmacheck.py" ../shared/tools/vmacheck.py /work/shared/tools/vmacheck.py; do
  if [ -f "$c" ]; then checker=$c; break; fi
done

disk="$dir/disk-$mib-$seed.raw"
raw="$dir/disk-$mib-$seed.vma"
if [ ! -s "$raw" ]; then
  "$dir/mkdisk" -seed "$seed" -size "${mib}M" > "$disk"
  "$dir/mkvma" "$disk:drive-scsi0" > "$raw"
fi
name=vzdump-qemu-100-2025_12_15-03_00_03.vma

# garbage N: 64 KiB of seeded random bytes
garbage() { python3 -c "import random,sys; random.seed($1); sys.stdout.buffer.write(random.randbytes(65536))"; }

# run LABEL ARCHIVE DECOMPRESSOR: stock and ours on one damaged archive
run() {
  local label=$1 arc=$2 dec=$3
  rm -rf "$dir/stock" "$dir/ours"
  if [ -n "$checker" ]; then
    $dec -dc "$arc" 2>/dev/null | python3 "$checker" - -x "$dir/stock" >/dev/null 2>&1 || true
    printf '  %-22s stock (%s -dc | vma extract): ' "$label" "$dec"
    if [ -f "$dir/stock/disk-drive-scsi0.raw" ]; then "$dir/cmpimg" "$disk" "$dir/stock/disk-drive-scsi0.raw"; else echo "no image"; fi
  fi
  /usr/bin/time -f "%e s, peak RSS %M KB" -o "$dir/time" "$dir/vzsalvage" extract -q "$arc" -o "$dir/ours" >/dev/null || true
  printf '  %-22s vzsalvage extract (%s): ' "$label" "$(tail -1 "$dir/time")"
  "$dir/cmpimg" "$disk" "$dir/ours/disk-drive-scsi0.raw" "$dir/ours/damage.json" drive-scsi0
}

for comp in ${COMPRESSORS:-gzip pigz lzop}; do
  case $comp in
    gzip) ext=gz; dec=gzip; cmd=(gzip --rsyncable) ;;
    pigz) ext=gz; dec=gzip; cmd=(pigz --rsyncable) ;;
    lzop) ext=lzo; dec=lzop; cmd=(lzop) ;;
    *) echo "unknown compressor $comp" >&2; exit 2 ;;
  esac
  arc="$dir/$comp-$mib-$seed/$name.$ext"
  mkdir -p "$(dirname "$arc")" "$dir/bad"
  if [ ! -s "$arc" ]; then "${cmd[@]}" < "$raw" > "$arc"; fi
  size=$(stat -c %s "$arc")
  echo "--- ${cmd[*]}: archive $((size / 1048576)) MiB, VMA $(( $(stat -c %s "$raw") / 1048576 )) MiB, disk $mib MiB (seed $seed)"
  bad="$dir/bad/$name.$ext"
  for pct in "${@:-50}"; do
    cp "$arc" "$bad"
    garbage "$pct" | dd of="$bad" bs=1 seek=$((size * pct / 100)) conv=notrunc status=none
    run "64 KiB garbage at ${pct}%" "$bad" "$dec"
  done
  head -c $((size / 2)) "$arc" > "$bad"
  run "cut at 50%" "$bad" "$dec"
done
