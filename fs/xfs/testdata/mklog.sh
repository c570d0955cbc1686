#!/bin/sh
# mklog.sh makes the pinned dirty-log images of logreplay_test.go with the
# real kernel (needs root, loop devices and the xfs module):
#
#   sh mklog.sh v5 && sh mklog.sh v5wrap && sh mklog.sh v5grow
#
# v5grow is different: a 24 MiB filesystem on a 40 MiB image grown with
# xfs_growfs, then files that fill the new space, sync, shutdown: the
# grown superblock is only in the log.
#
# (v4 is no longer possible: this machine's kernel does not mount v4.)
#
# For each: mkfs.xfs, mount, phase 1 (files, directories, symlinks,
# xattrs), sync and freeze/thaw (its metadata reaches its home blocks),
# phase 2 (new files, an inode chunk's worth of them, renames, deletions,
# a fragmented file, appends, xattrs), sync, phase 3 (more of the same,
# unsynced), then `xfs_io -x -c 'shutdown -f'` (the log is flushed, the
# metadata is not) and umount. The image left is dirty-log-$V.img.zst.
#
# The manifests are what the kernel sees in a copy: dirty-log-$V.replayed
# after a normal mount (log recovery), dirty-log-$V.ondisk after
# mount -o ro,norecovery. A line is "TYPE SIZE SHA256 PATH" (TYPE f or d;
# directories have size 0 and hash -) or "l 0 TARGET PATH" for symlinks.
# The exact bytes depend on the kernel: the images are pinned, and the
# tests never run this script.
set -eu
V=${1:?v4 or v5}
CHURN=0
case $V in
v5) MKFS="-m crc=1" ;;
v5wrap) MKFS="-m crc=1" CHURN=1 ;; # churn: the log wraps, chunks are freed
v5grow) MKFS="-m crc=1 -d size=24m" ;;
v4) MKFS="-m crc=0" ;;
esac
export TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs LC_ALL=C
OUT=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'umount "$W/mnt" 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir "$W/mnt"
IMG=$W/img
truncate -s 48M "$IMG"
[ $V = v5grow ] && truncate -s 40M "$IMG"
# shellcheck disable=SC2086
mkfs.xfs -q -f $MKFS -L dirtylog "$IMG"
M=$W/mnt
mount -o loop "$IMG" "$M"

# text PATH SIZE writes SIZE bytes of lines naming PATH (compressible,
# different for every file).
text() {
	awk -v p="$1" -v n="$2" 'BEGIN { s = ""; i = 0; while (length(s) < n) { s = s sprintf("%s line %d\n", p, i++) } printf "%s", substr(s, 1, n) }' >"$M/$1"
}

if [ $V = v5grow ]; then
	xfs_growfs "$M" >/dev/null
	for i in $(seq 1 40); do head -c 600000 /dev/zero | tr '\0' "$((i % 10))" >"$M/f$i"; done
	sync
	xfs_io -x -c "shutdown -f" "$M"
	umount "$M"
else
# Phase 1: reaches the disk (sync, then freeze writes the metadata back).
mkdir -p "$M/keep/sub" "$M/gone" "$M/moved"
for i in $(seq 1 20); do text "keep/f$i" $((i * 700)); done
for i in $(seq 1 10); do text "gone/g$i" $((i * 300)); done
text keep/sub/deep 5000
text moved/old-name 3000
text appended 4000
ln -s keep/sub/deep "$M/link1"
setfattr -n user.phase -v one "$M/keep/f1"
sync
fsfreeze -f "$M"
fsfreeze -u "$M"

# Phase 2: synced (data and log), metadata only in the log.
mkdir -p "$M/new/many"
for i in $(seq 1 150); do text "new/many/n$i" $((100 + i * 13)); done
mv "$M/moved/old-name" "$M/moved/new-name"
mv "$M/keep/f2" "$M/new/from-keep"
rm -rf "$M/gone"
rm "$M/keep/f3"
i=0
while [ $i -lt 40 ]; do
	xfs_io -f -c "pwrite -S 0x$(printf %02x $((i + 65))) $((i * 8192)) 4096" "$M/frag" >/dev/null
	i=$((i + 1))
done
awk 'BEGIN { for (i = 0; i < 300; i++) print "appended in phase 2 line", i }' >>"$M/appended"
setfattr -n user.phase -v two "$M/keep/f1"
setfattr -n user.new -v "a new attribute" "$M/keep/f4"
ln -s "$(printf 'long/%.0s' $(seq 1 60))target" "$M/new/longlink"
sync

# Churn (v5wrap): whole inode chunks created and freed again, renames,
# with syncs, until the log has wrapped.
if [ $CHURN = 1 ]; then
	for round in $(seq 1 80); do
		mkdir "$M/churn"
		for i in $(seq 1 130); do echo "$round $i" >"$M/churn/c$i"; done
		sync
		mv "$M/churn/c7" "$M/new/kept-$round"
		rm -r "$M/churn"
		sync
	done
fi

# Phase 3: unsynced but for fsync of some files; the log is flushed by the
# shutdown.
mkdir "$M/late"
for i in $(seq 1 30); do text "late/l$i" $((i * 111)); done
xfs_io -c fsync "$M/late/l30"
mv "$M/new/many/n1" "$M/late/renamed-n1"
for i in $(seq 2 2 40); do rm "$M/new/many/n$i"; done
rmdir "$M/keep/sub" 2>/dev/null || rm -r "$M/keep/sub"
text keep/f5 9999
xfs_io -c fsync "$M/keep/f5"
touch "$M/late/empty"
sync -f "$M/late/l1"
xfs_io -x -c "shutdown -f" "$M"
umount "$M"
fi

# manifest DIR: one line per path under DIR, sorted. A path the kernel
# cannot read (the norecovery view may be inconsistent) is "? 0 - PATH".
manifest() {
	(cd "$1" && find . -mindepth 1 2>/dev/null | sort | while read -r p; do
		q=${p#./}
		if [ -L "$p" ]; then
			echo "l 0 $(readlink "$p") $q"
		elif [ -d "$p" ]; then
			echo "d 0 - $q"
		elif s=$(stat -c %s "$p" 2>/dev/null) && h=$(sha256sum <"$p" 2>/dev/null); then
			echo "f $s ${h%% *} $q"
		else
			echo "? 0 - $q"
		fi
	done)
}
cp --sparse=always "$IMG" "$W/copy"
mount -o loop,ro,norecovery "$W/copy" "$M"
manifest "$M" >"$OUT/dirty-log-$V.ondisk"
umount "$M"
mount -o loop "$W/copy" "$M"
manifest "$M" >"$OUT/dirty-log-$V.replayed"
umount "$M"
zstd -q -19 -f "$IMG" -o "$OUT/dirty-log-$V.img.zst"
