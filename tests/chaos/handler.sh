#!/bin/sh
# handler.sh RECORD MODE - the chaos suite's exec handler. Records the claim it
# runs under by appending one line "JOB_ID FENCE ATTEMPT START_MS MODE" to
# RECORD (one short O_APPEND write: atomic between writers), then, by MODE:
#   fence  works 0-200 ms, answers {"fence": FENCE}
#   long   works 0-3000 ms (a cancel target), answers {"fence": FENCE}
#   flaky  fails (exit 3) on attempts 1 and 2, then works 0-50 ms and answers
# The checker compares each committed result with the fences recorded here,
# and each retry's start with the previous attempt's start (backoff).
set -eu
rec=$1 mode=$2
cat >/dev/null                                   # the payload is not needed
printf '%s %s %s %s %s\n' "$JOBMILL_JOB_ID" "$JOBMILL_FENCE" "$JOBMILL_ATTEMPT" \
    "$(date +%s%3N)" "$mode" >>"$rec"
case $mode in
    fence) max=200 ;;
    long) max=3000 ;;
    flaky)
        if [ "$JOBMILL_ATTEMPT" -le 2 ]; then
            echo "flaky: attempt $JOBMILL_ATTEMPT fails on purpose" >&2
            exit 3
        fi
        max=50 ;;
    *) echo "unknown mode $mode" >&2; exit 64 ;;
esac
ms=$(( $(od -An -N2 -tu2 /dev/urandom) % (max + 1) ))
sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
printf '{"fence": %s}\n' "$JOBMILL_FENCE"
