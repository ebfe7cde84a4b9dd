#!/usr/bin/env bash
# Long-running differential soak: random blocks, sequential vs parallel, until stopped.
#   scripts/soak.sh [MINUTES] [SEED]         (no MINUTES: run until interrupted)
#   scripts/soak.sh --evm [MINUTES] [SEED]   EVM blocks merged from the blockchain tests
#                                            (BLOCKSTM_ETH_TESTS, default ../shared/fixtures/ethereum-tests)
# A divergence stops the run and prints the seed and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--evm" ]; then
    shift
    args=(--fixtures "${BLOCKSTM_ETH_TESTS:-../shared/fixtures/ethereum-tests}")
    [ -n "${1:-}" ] && args+=(--minutes "$1")
    [ -n "${2:-}" ] && args+=(--seed "$2")
    exec cargo run --release -q -p blockstm-cli -- eth-diff "${args[@]}"
fi
args=()
[ -n "${1:-}" ] && args+=(--minutes "$1")
[ -n "${2:-}" ] && args+=(--seed "$2")
exec cargo run --release -q -p blockstm-testkit --bin soak -- "${args[@]}"
