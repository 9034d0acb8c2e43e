#!/usr/bin/env bash
# Every test: the workspace's tests on this kernel, then the privileged kernel suite again
# inside Debian's stock kernel in QEMU (tests/vm/vm.sh), where kprobes and fentry exist.
# Run as root so privileged tests load real probes; NUBPF_REQUIRE_PRIVILEGED=1 turns every
# skip (no root, no QEMU, no kprobes in the VM) into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked

vm="$PWD/tests/vm/vm.sh"
status=0
"$vm" >/dev/null || status=$?
if [ "$status" != 0 ]; then
    if [ "${NUBPF_REQUIRE_PRIVILEGED:-}" = 1 ]; then
        echo "tests/all.sh: the VM cannot run (status $status); see the message above" >&2
        exit 1
    fi
    echo "tests/all.sh: skipping the VM suite: the VM cannot run here (see above)" >&2
    exit 0
fi
echo "tests/all.sh: the kernel suite on $(cat target/vm/release) (QEMU)"
started=$(date +%s)
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$vm" NUBPF_REQUIRE_KPROBES=1 \
    cargo test --locked --test kernel
echo "tests/all.sh: the VM suite took $(( $(date +%s) - started ))s"
