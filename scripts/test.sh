#!/usr/bin/env bash
# The test run behind `npm test` (after set-up). With file or filter arguments: vitest with those. Without: every
# test, in two vitest processes side by side, each one file at a time: the lab files (they share one lab and mostly
# wait on it: a site's probes, a stall limit, a replica catching up; two long files of their own join them) and the
# rest, which keeps a core busy meanwhile.
# vitest 4 runs a config's projects one after the other, hence two processes. The lab stream's output follows the
# rest's; the exit status is non-zero when either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then exec npx vitest run "$@"; fi
lab_log=$(mktemp -t dcctl-lab-tests.XXXXXX)
trap 'kill "$lab_pid" 2>/dev/null; wait "$lab_pid" 2>/dev/null; rm -f "$lab_log"' EXIT
npx vitest run --project lab >"$lab_log" 2>&1 &
lab_pid=$!
npx vitest run --project rest
rest_status=$?
echo "== the lab test files (run beside the others):"
wait "$lab_pid"
lab_status=$?
cat "$lab_log"
[ "$rest_status" -eq 0 ] && [ "$lab_status" -eq 0 ]
