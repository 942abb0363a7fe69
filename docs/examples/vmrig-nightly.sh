#!/usr/bin/env bash
# One night of vmrig on a plain host (run by vmrig-nightly.service, or by hand):
#   1. every scenario, every kernel, in parallel within the host's cores and memory;
#   2. the nightly summary (regressions, fixes, flaky, still failing) -> $VMRIG_RESULTS/summary.md,
#      summary.json and index.html (open index.html in a browser, or serve the directory);
#   3. retention: gzip older runs' logs, prune artifacts beyond the newest $VMRIG_KEEP runs
#      (pinned baselines and KEEP-marked runs are never pruned).
# Exit status: the run's (0 every cell met its expectation, 1 a cell did not, 2 usage or
# infrastructure error, 130 interrupted), raised to 1 when the summary found a regression.
set -uo pipefail
cd "${VMRIG_HOME:-$(dirname "$0")/../..}"
export VMRIG_RESULTS="${VMRIG_RESULTS:-$PWD/results}"
export CI=1 # plain progress lines in the journal

mapfile -t scenarios < <(ls ${VMRIG_SCENARIOS:-scenarios/*.yaml})
echo "vmrig nightly: ${#scenarios[@]} scenarios, --jobs ${VMRIG_JOBS:-auto}, results in $VMRIG_RESULTS"

node bin/vmrig.js run "${scenarios[@]}" --jobs "${VMRIG_JOBS:-auto}"
run=$?
node bin/vmrig.js summary
summary=$?
node bin/vmrig.js gc --keep "${VMRIG_KEEP:-14}" || echo "vmrig nightly: gc failed (continuing)" >&2

code=$run
if [ "$code" -eq 0 ] && [ "$summary" -eq 1 ]; then code=1; fi
echo "vmrig nightly: run exit $run, summary exit $summary -> $code"
exit "$code"
