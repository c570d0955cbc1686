#!/usr/bin/env bash
# Builds sample/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst: a small VM backup made with the
# real tools (sgdisk, mke2fs -d, zstd as vzdump calls it) and then damaged like the story's
# (a 64 KiB run of garbage at 30 % of the file), plus sample/original.sha256 with the sha256 of
# every file of the guest's root filesystem, to check a rescue against.
# Run from the repository: scripts/make-sample.sh   (needs gdisk, e2fsprogs, zstd)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{etc/nginx,srv/vocab,var/lib/mysql,var/www/html,var/lib/docker/volumes/redis/_data,root}

# the guest: an Alpine VM running a vocabulary web app (as in the story)
echo vocab-vm > "$root/etc/hostname"
printf 'server {\n  listen 80;\n  root /var/www/html;\n  location /api { proxy_pass http://127.0.0.1:8080; }\n}\n' > "$root/etc/nginx/default.conf"
printf 'services:\n  mysql:\n    image: mysql:8\n  redis:\n    image: redis:7\n  app:\n    image: vocab:latest\n' > "$root/srv/docker-compose.yml"
awk 'BEGIN { srand(100); split("able,about,above,accept,across,act,add,afraid,after,again,age,ago,agree,air,all,allow,also,always,among,anger,animal,answer,any,appear,apple,area,arm,arrange,arrive,art", w, ",");
  print "id,word,meaning,level,added";
  for (i = 1; i <= 80000; i++) printf "%d,%s%d,%s of %s,%d,2024-%02d-%02d\n", i, w[int(rand()*30)+1], i, w[int(rand()*30)+1], w[int(rand()*30)+1], int(rand()*6)+1, int(rand()*12)+1, int(rand()*28)+1 }' > "$root/srv/vocab/words.csv"
for i in $(seq 1 40); do
  printf '<html><head><title>Lesson %d</title></head><body><h1>Lesson %d</h1>%s</body></html>\n' "$i" "$i" "$(head -c 3000 "$root/srv/vocab/words.csv" | tail -c 2000)" > "$root/var/www/html/lesson$i.html"
done
# InnoDB-like pages: mostly structured rows, a little incompressible data
for p in $(seq 0 255); do
  awk -v p="$p" 'BEGIN { printf "PAGE%06d", p; for (i = 0; i < 200; i++) printf "|%d|word%d|%d", p * 200 + i, (p * 7 + i) % 80000, i % 6 }' | head -c 3072
  head -c 1024 /dev/urandom
done > "$root/var/lib/mysql/ibdata1"
for t in users words progress sessions; do
  awk -v t="$t" 'BEGIN { for (i = 0; i < 4000; i++) printf "%s row %06d value %d\n", t, i, i * 7 % 1000 }' > "$root/var/lib/mysql/$t.ibd"
done
head -c 65536 /dev/urandom > "$root/var/lib/docker/volumes/redis/_data/dump.rdb"
ln -s /srv/vocab/words.csv "$root/root/words.csv"
ln "$root/etc/hostname" "$root/etc/hostname.bak"

# the disks: GPT with EFI, /boot and an ext4 root (64 MiB), and an efidisk
disk="$work/disk.raw"
truncate -s 64M "$disk"
sgdisk -n1:2048:+8M -t1:ef00 -c1:EFI -n2:0:+8M -t2:8300 -c2:boot -n3:0:0 -t3:8300 -c3:root "$disk" >/dev/null
start=$(sgdisk -i3 "$disk" | awk '/First sector/ {print $3}')
end=$(sgdisk -i3 "$disk" | awk '/Last sector/ {print $3}')
mke2fs -q -F -t ext4 -L root -d "$root" -E offset=$((start * 512)) "$disk" $(((end - start + 1) / 2))k
efi="$work/efi.raw"
head -c 540672 /dev/zero | tr '\0' '\377' > "$efi"

out=sample/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst
go run ./scripts/mkvma "$efi:drive-efidisk0" "$disk:drive-scsi0" | zstd -q --threads=1 -c > "$out"
# the damage: 64 KiB of garbage at 30 % of the file (moved on a little if it happens to fall
# where zstd cannot notice it, inside a raw block: the sample should show located damage)
size=$(stat -c %s "$out")
cp "$out" "$work/clean.zst"
go build -o "$work/vzsalvage" ./cmd/vzsalvage
for pct in 30 31 32 33 34 35 36 37 38 39 40; do
  cp "$work/clean.zst" "$out"
  head -c 65536 /dev/urandom | dd of="$out" bs=1 seek=$((size * pct / 100)) conv=notrunc status=none
  if "$work/vzsalvage" verify --json "$out" | grep -q '"state": "\(lost\|tainted\)"'; then
    echo "garbage at ${pct}% of the file" >&2
    break
  fi
done
(cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > sample/original.sha256
ls -l "$out" sample/original.sha256
