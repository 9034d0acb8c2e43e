#!/bin/sh
# nubpf side by side with bpftrace (benches/compare.rs); results go to bench/results/.
# Usage: sudo bench/run.sh [--runs N] [--out DIR] [--only start|per-event|throughput|workbench]
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: loading probes needs root: sudo bench/run.sh" >&2
    exit 3
fi
if ! command -v bpftrace >/dev/null 2>&1; then
    echo "bench/run.sh: the peer is missing: apt-get install bpftrace" >&2
    exit 3
fi

# Build (and ask git) as the user who ran sudo, so target/ stays theirs; run as root.
as_user() {
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        sudo -u "$SUDO_USER" -H sh -c 'PATH="$HOME/.cargo/bin:$PATH"; exec "$@"' sh "$@"
    else
        PATH="$HOME/.cargo/bin:$PATH" "$@"
    fi
}

NUBPF_BENCH_COMMIT=$(as_user git describe --always --dirty 2>/dev/null || echo unknown)
export NUBPF_BENCH_COMMIT

exe=$(as_user cargo bench --locked --bench compare --no-run --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/compare-[^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$exe" ]; then
    echo "bench/run.sh: building benches/compare.rs failed" >&2
    exit 1
fi
exec "$exe" "$@"
