#!/bin/sh
# fence_append.sh FILE - exec handler of tests/system/test_fault.py. Records the claim it runs under by appending
# "JOB_ID FENCE" to FILE (one short O_APPEND write, atomic between writers),
# works for a random 0-200 ms, then answers {"fence": FENCE}. The test checks
# that each job's committed result carries the fence recorded last for it.
set -eu
cat >/dev/null                       # the payload is not needed
printf '%s %s\n' "$JOBMILL_JOB_ID" "$JOBMILL_FENCE" >>"$1"
ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 201 ))
sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
printf '{"fence": %s}\n' "$JOBMILL_FENCE"
