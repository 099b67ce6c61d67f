#!/usr/bin/env python3
"""Turn a recorder log into one sample file per signal.

usage: python -m e2e.signals.extract SIGNALS.jsonl OUTDIR
Writes OUTDIR/<label>.json with the payload (hook stdin, or notify's argv JSON);
Notification samples are split by notification_type (Notification-idle_prompt.json),
StopFailure by error, SessionStart by source, Codex notify by its payload type.
The first record of each kind wins.  Each file holds {"label", "argv", "stdin"}.
"""
import json
import os
import sys


def key(rec):
    label = rec["label"]
    s = rec.get("stdin") if isinstance(rec.get("stdin"), dict) else {}
    for field in ("notification_type", "error", "source", "reason"):
        if s.get(field) and label.split("-")[-1] in ("Notification", "StopFailure",
                                                     "SessionStart", "SessionEnd"):
            return f"{label}-{s[field]}"
    if rec.get("argv") and isinstance(rec["argv"][-1], dict) and rec["argv"][-1].get("type"):
        return f"{label}-{rec['argv'][-1]['type']}"
    return label


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    seen = set()
    with open(src) as f:
        for line in f:
            rec = json.loads(line)
            k = key(rec)
            if k in seen:
                continue
            seen.add(k)
            with open(os.path.join(out, k + ".json"), "w") as g:
                json.dump({"label": rec["label"], "time": rec["time"], "argv": rec["argv"],
                           "stdin": rec["stdin"]}, g, indent=2)
                g.write("\n")
            print(k)


if __name__ == "__main__":
    main()
