#!/usr/bin/env bash
# Set up the machine (idempotent), then run the whole test suite.
# Extra arguments are passed to `npm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
set +e
npm test -- "$@"
rc=$?
exit "$rc"
