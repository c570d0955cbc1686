#!/usr/bin/env bash
# Builds the Debian packages of vzsalvage from this checkout:
#   dist/vzsalvage_VERSION_amd64.deb and dist/vzsalvage_VERSION_arm64.deb
# (a static binary, man pages generated from the commands' own help, bash,
# zsh and fish completions, the systemd units of packaging/systemd (not
# enabled), example configs, the licence and a changelog). Needs Go and
# dpkg-deb (Debian's dpkg package); no root.
#   scripts/build-deb.sh [ARCH...]        (default: amd64 arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64)

# Debian version from git: a tag v1.2.3 gives 1.2.3 (plus ~gitN.HASH past
# it); without tags 0.0~gitDATE.HASH.
desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null || true)
if [ -n "$desc" ]; then
  version=$(echo "${desc#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/~git\1.\2/')
else
  version="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=7 HEAD)"
fi
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || version="$version+dirty"

dist=${DIST:-dist}
mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for arch in "${archs[@]}"; do
  root="$work/$arch"
  install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
    "$root/usr/share/doc/vzsalvage/examples" "$root/usr/share/bash-completion/completions" \
    "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
  rm -f "$dist"/vzsalvage_*_"$arch".deb
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
    -ldflags "-s -w -X main.version=$version" -o "$root/usr/bin/vzsalvage" ./cmd/vzsalvage

  # Docs and completions come from the binary itself: build one for this
  # machine to run (the package's may be another architecture).
  host="$work/vzsalvage-host"
  [ -x "$host" ] || CGO_ENABLED=0 go build -ldflags "-X main.version=$version" -o "$host" ./cmd/vzsalvage
  "$host" gen-man "$work/man"
  for f in "$work"/man/*.1; do gzip -9n < "$f" > "$root/usr/share/man/man1/$(basename "$f").gz"; done
  "$host" completion bash > "$root/usr/share/bash-completion/completions/vzsalvage"
  "$host" completion zsh > "$root/usr/share/zsh/vendor-completions/_vzsalvage"
  "$host" completion fish > "$root/usr/share/fish/vendor_completions.d/vzsalvage.fish"

  if [ -d packaging/systemd ]; then
    install -d "$root/lib/systemd/system"
    install -m 644 packaging/systemd/* "$root/lib/systemd/system/"
  fi
  install -d "$root/usr/lib/vzsalvage"
  install -m 755 packaging/lib/vzdump-hook "$root/usr/lib/vzsalvage/vzdump-hook"
  if [ -d packaging/examples ]; then
    install -m 644 packaging/examples/* "$root/usr/share/doc/vzsalvage/examples/"
  fi
  install -m 644 packaging/copyright "$root/usr/share/doc/vzsalvage/copyright"
  # A Go binary is static by design (no C library on the host needed).
  install -d "$root/usr/share/lintian/overrides"
  echo "vzsalvage: statically-linked-binary [usr/bin/vzsalvage]" > "$root/usr/share/lintian/overrides/vzsalvage"
  {
    echo "vzsalvage ($version) unstable; urgency=medium"
    echo
    git log -40 --format='  * %s' | cut -c1-78
    echo
    echo " -- vzsalvage developers <vzsalvage@users.noreply.github.com>  $(git log -1 --format=%cD)"
  } | gzip -9n > "$root/usr/share/doc/vzsalvage/changelog.gz"
  chmod -R go-w "$root"

  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat > "$root/DEBIAN/control" <<CONTROL
Package: vzsalvage
Version: $version
Architecture: $arch
Maintainer: vzsalvage developers <vzsalvage@users.noreply.github.com>
Installed-Size: $size
Section: admin
Priority: optional
Homepage: https://github.com/vzsalvage/vzsalvage
Description: rescue data from damaged Proxmox VE backups
 vzsalvage reads vzdump backups (.vma and container .tar, compressed with
 zstd, gzip or lzo) past damage, says exactly which bytes and which guest
 files were lost, and copies files out of them without root, loop devices
 or mounts. It also verifies new backups (as a vzdump hook or on a
 schedule) so that damage is found the day it happens.
CONTROL
  if [ -d "$root/lib/systemd/system" ]; then
    # The units ship disabled; only tell systemd they are there or gone.
    for s in postinst postrm; do
      printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi\n' > "$root/DEBIAN/$s"
      chmod 755 "$root/DEBIAN/$s"
    done
  fi
  (cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
  out="$dist/vzsalvage_${version}_${arch}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
  echo "$out"
done
