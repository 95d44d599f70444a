#!/usr/bin/env bash
# `isoboot bmc` against the fake BMC (tests/bmc/fake_bmc.py) for every vendor
# tree; the cases live in bmc_cli_test.py (python3 stdlib + openssl).
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_SOURCE_DIR:?}"
mkdir -p "${ISOBOOT_TEST_TMP:-/tmp}"
exec python3 "$ISOBOOT_SOURCE_DIR/tests/bmc/bmc_cli_test.py" "$@"
