#!/usr/bin/env bash
# debian-rootfs.sh - makes the root filesystems of the local debian:bookworm
# and debian:bookworm-slim base images as two tarballs, with debootstrap
# (minbase) from the given mirror. Run as root by scripts/images, which
# imports them with `podman import`; no registry is involved.
#
#   debian-rootfs.sh MIRROR SECURITY_MIRROR FULL_TAR SLIM_TAR
#
# SECURITY_MIRROR may be empty (then the image's apt sources name no
# security suite). The tarballs are written beside each other, atomically.
# The slim one leaves out docs (copyright files stay), man pages, info and
# locales, and carries dpkg rules that keep them out of packages installed
# later, as the official slim image does.
set -euo pipefail
mirror=${1:?mirror} security=${2-} full=${3:?full tarball} slim=${4:?slim tarball}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

work=$(mktemp -d "$(dirname "$full")/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/rootfs

if ! debootstrap --variant=minbase bookworm "$r" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    echo "debian-rootfs: debootstrap from $mirror failed" >&2
    exit 1
fi

# apt sources as the official image has them (deb822), from this mirror.
rm -f "$r/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: %s\n' \
        "$mirror" "$keyring"
    if [ -n "$security" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: %s\n' \
            "$security" "$keyring"
    fi
} >"$r/etc/apt/sources.list.d/debian.sources"

# apt keeps no downloaded packages, caches or translations (as in the
# official images), so an image's apt layer holds only what was installed.
cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"

# Nothing of the machine that made it: the runtime provides these.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
       "$r"/var/log/*.log "$r"/var/log/apt/* "$r/etc/hostname" "$r/etc/resolv.conf"

pack() {
    tar --numeric-owner -C "$r" -cf "$1.tmp" . && mv "$1.tmp" "$1"
}
pack "$full"

cat >"$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CONF
find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$r"/usr/share/man/* "$r"/usr/share/groff/* "$r"/usr/share/info/* "$r"/usr/share/lintian/* \
       "$r"/usr/share/linda/* "$r"/usr/share/locale/*
pack "$slim"
