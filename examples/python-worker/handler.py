"""handler.py - the exec handler of the job type "wordcount".

jobmill-worker runs it once per job: the payload JSON on stdin, the job's
JOBMILL_JOB_ID, JOBMILL_QUEUE, JOBMILL_ATTEMPT and JOBMILL_FENCE in the
environment. Whatever JSON it prints on stdout and exit 0 is the job's
result; exit 65 (listed in permanent_exit_codes) fails the job without a
retry; any other non-zero exit is retried, with the stderr tail as the error.

Payload: {"text": "...", "top": N (optional, default 3)}
Result:  {"words": W, "lines": L, "top": [[word, count], ...], "attempt": A}
"""
import collections
import json
import os
import sys

EX_DATAERR = 65


def main():
    try:
        payload = json.load(sys.stdin)
        text = payload["text"]
        top = int(payload.get("top", 3))
        if not isinstance(text, str) or top < 0:
            raise ValueError("text must be a string and top >= 0")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        print("wordcount: bad payload: %s" % e, file=sys.stderr)
        return EX_DATAERR
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    counts = collections.Counter(w for w in words if w)
    result = {
        "words": sum(counts.values()),
        "lines": len(text.splitlines()),
        "top": [[w, n] for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
        "attempt": int(os.environ.get("JOBMILL_ATTEMPT", "0")),
    }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
