#!/usr/bin/env bash
# Runs every test of vzsalvage. Tests build their disk images and archives
# with the real tools (mke2fs, mkfs.xfs, sgdisk, zstd, gzip, lzop, ...): when
# run as root, this installs the Debian packages that provide them if any is
# missing; VZSALVAGE_REQUIRE_TOOLS=1 then makes a missing tool a failure
# rather than a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package
declare -A pkg=(
  [mke2fs]=e2fsprogs [debugfs]=e2fsprogs [mkfs.xfs]=xfsprogs [xfs_db]=xfsprogs [mkfs.btrfs]=btrfs-progs [btrfs]=btrfs-progs
  [mkfs.vfat]=dosfstools [mcopy]=mtools [mkntfs]=ntfs-3g [ntfscp]=ntfs-3g [ntfs-3g]=ntfs-3g [sgdisk]=gdisk [sfdisk]=fdisk
  [zstd]=zstd [gzip]=gzip [pigz]=pigz [lzop]=lzop [tsk_recover]=sleuthkit [fls]=sleuthkit
  [xfs_repair]=xfsprogs [xfs_io]=xfsprogs [mattrib]=mtools [fsck.vfat]=dosfstools [mount.exfat-fuse]=exfat-fuse
  [qemu-img]=qemu-utils [qemu-io]=qemu-utils [pvcreate]=lvm2 [python3]=python3 [blkid]=util-linux
  [setcap]=libcap2-bin [mkswap]=util-linux [losetup]=mount [cryptsetup]=cryptsetup-bin [mkfs.exfat]=exfatprogs [bc]=bc
  [dpkg-deb]=dpkg [man]=man-db [lintian]=lintian [tar]=tar [setfacl]=acl [setfattr]=attr
)
missing=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] || missing+=("${pkg[$tool]}")
done
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing test tools: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  else
    echo "warning: missing test tools (${missing[*]}); tests that need them are skipped" >&2
  fi
fi
export VZSALVAGE_REQUIRE_TOOLS=${VZSALVAGE_REQUIRE_TOOLS:-$([ ${#missing[@]} -eq 0 ] || [ "$(id -u)" = 0 ] && echo 1 || echo 0)}

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
go test -timeout 40m "$@" ./...
if [ -n "${VZSALVAGE_FUZZ_SMOKE:-}" ]; then
  ./scripts/fuzz-smoke.sh
fi
