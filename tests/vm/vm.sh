#!/usr/bin/env bash
# vm.sh — runs a command inside Debian's stock kernel (QEMU, software emulation), with the
# host's root shared read-only under a throwaway tmpfs overlay, and exits with its status.
# For kernels this machine lacks (kprobes, fentry). Usable as a cargo runner:
#
#   tests/vm/vm.sh COMMAND [ARGS...]
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=tests/vm/vm.sh cargo test --test kernel
#
# The kernel package is resolved (Debian's current linux-image-amd64), downloaded and turned
# into a bootable vmlinux + initramfs once, in $NUBPF_VM_CACHE (default target/vm).
# Environment: NUBPF_VM_TIMEOUT (seconds, default 900), NUBPF_VM_MEM (default 2G).
# Exit status: the command's; 97 when a tool or the kernel package is missing; 98 when the VM
# did not report a status (crash, timeout).
set -euo pipefail

die() { echo "vm.sh: $*" >&2; exit 97; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing (apt-get install --no-install-recommends $2)"; }
need qemu-system-x86_64 qemu-system-x86
need busybox busybox-static
need depmod kmod
need cpio cpio
need xz xz-utils
need apt-get apt

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${NUBPF_VM_CACHE:-$repo/target/vm}"
mkdir -p "$cache"

prepare() {
    [ -s "$cache/vmlinux" ] && [ -s "$cache/initramfs.cpio.gz" ] && [ -s "$cache/release" ] && return
    local work pkg ver deb
    work="$cache/build"
    rm -rf "$work"
    mkdir -p "$work"
    resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
    pkg=$(resolve)
    # Old builds leave the archive: with stale package lists, refresh them and resolve again.
    if [ -z "$pkg" ] || ! (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1); then
        apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(resolve)
        [ -n "$pkg" ] || die "cannot resolve Debian's current kernel package (apt-get update failed?)"
        (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
    fi
    ver=${pkg#linux-image-}
    echo "vm.sh: prepared from $pkg" >&2
    deb=$(ls "$work"/*.deb)
    dpkg -x "$deb" "$work/root"
    depmod -b "$work/root" "$ver"
    # Booting the uncompressed vmlinux (QEMU's PVH entry) saves seconds per boot: it is the
    # first xz stream inside vmlinuz.
    local z="$work/root/boot/vmlinuz-$ver" off
    # (`tail` and `grep` die of SIGPIPE once the reader has what it needs: not an error.)
    off=$( (LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" || true) | head -1 | cut -d: -f1 | tr -d '\0')
    [ -n "$off" ] || die "no xz stream in $z"
    (tail -c +"$((off + 1))" "$z" || true) | xz -dc --single-stream > "$work/vmlinux" 2>/dev/null || true
    [ -s "$work/vmlinux" ] || die "cannot unpack $z"

    local ir="$work/initramfs"
    mkdir -p "$ir"/{bin,proc,sys,dev,lower,up,newroot,mods}
    cp "$(command -v busybox)" "$ir/bin/busybox"
    for applet in $(busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$ir/bin/$applet"
    done
    local n=0 m
    for m in $(for mod in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
                   modprobe -d "$work/root" -S "$ver" --show-depends "$mod"
               done | awk '/^insmod/ {print $2}' | awk '!seen[$0]++'); do
        n=$((n + 1))
        case "$m" in
            *.xz) xz -dc "$m" > "$ir/mods/$(printf %02d $n)-$(basename "${m%.xz}")" ;;
            *.zst) die "zstd-compressed modules are not supported" ;;
            *) cp "$m" "$ir/mods/$(printf %02d $n)-$(basename "$m")" ;;
        esac
    done
    cp "$here/init" "$ir/init"
    chmod +x "$ir/init"
    (cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.cpio.gz"
    mv "$work/vmlinux" "$work/initramfs.cpio.gz" "$cache/"
    echo "$ver" > "$cache/release"
    rm -rf "$work"
}

prepare
[ $# -gt 0 ] || { echo "vm.sh: ready: Debian $(cat "$cache/release") in $cache" >&2; exit 0; }

share=$(mktemp -d "${TMPDIR:-/tmp}/nubpf-vm.XXXXXX")
trap 'rm -rf "$share"' EXIT
# The command runs in the guest as here: same directory, same environment.
{
    export -p | grep -v -E '^declare -x (BASH_|SHLVL|OLDPWD|_=)'
    printf 'cd %q\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} > "$share/cmd.sh"

timeout=${NUBPF_VM_TIMEOUT:-900}
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m "${NUBPF_VM_MEM:-2G}" \
    -nodefaults -no-reboot -display none \
    -kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio.gz" \
    -append "panic=-1 mitigations=off quiet" \
    -fsdev local,id=root,path=/,readonly=on,security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
    -fsdev local,id=share,path="$share",security_model=none \
    -device virtio-9p-pci,fsdev=share,mount_tag=share \
    -chardev stdio,id=console,signal=off -device virtio-serial-pci \
    -device virtconsole,chardev=console
qemu=$?
set -e
if [ -s "$share/status" ]; then
    exit "$(cat "$share/status")"
fi
echo "vm.sh: the VM did not report a status (qemu exit $qemu; timeout ${timeout}s)" >&2
exit 98
