#!/usr/bin/env python3
"""Tamper with a signed audit report one value at a time; `audit verify` must catch each change.

Writes the README's audit report (tiny-clinical under the bundled clinical/payments rules) with
a fresh signing key in a temporary home, then changes each value of its JSON in turn as
fuzz_json_files.py does (0, -1, huge, null, wrong types, a list cut short or lengthened,
removed) and runs `localist audit verify` on the JSON alone. Prints every change verified as
intact, with the value it replaced, and a summary. The report's hash covers what the program
reads, so a change that leaves that the same (0.0 written as 0, a null or a default value
dropped) is intact by design; any other change verified as intact, or any panic, is a failure
(exit 1).

Usage: BIN=target/release/localist python3 scripts/fuzz_audit_report.py   (JOBS, default 2)
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_json_files as F  # noqa: E402
from fuzz_common import BIN, ROOT, check_binary  # noqa: E402
# Values the program reads as what they replace (an integer for a float of the same value, a
# removed null) are the same report; so is a removed key whose default is its value.
DEFAULTS = {"sigma": 4.0, "tau": 1.0, "tau_min": 0.25, "lambda": 0.0, "mode": "Bias",
            "schedule": "Uniform"}


def same_meaning(label, old):
    key = label.split(" = ")[0].removesuffix(" removed").split(".")[-1]
    if label.endswith(" removed"):
        return old is None or DEFAULTS.get(key, object()) == old or (
            key in ("params", "dial") and all(
                DEFAULTS.get(k) == v for k, v in (old.get("params", old)).items()
                if k in DEFAULTS))
    new = json.loads(label.split(" = ", 1)[1])
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new) == old
    if key in ("params", "dial") and new in ([], {}):
        return same_meaning(label.split(" = ")[0] + " removed", old)
    return False


def get(obj, path):
    for p in path:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    return obj


def main():
    home = tempfile.mkdtemp(prefix="auditfuzz")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
    report = os.path.join(home, "report.html")
    subprocess.run([BIN, "audit", "report", "-c", "sample_models/tiny-clinical", "-r",
                    "assets/rules/clinical_payments.rules", "--out", report, "--threads", "1"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    base = json.load(open(report.replace(".html", ".json")))

    def run(i_case):
        i, (label, changed) = i_case
        d = tempfile.mkdtemp(dir=home)
        path = os.path.join(d, "report.json")
        with open(path, "w") as fh:
            json.dump(changed, fh)
        p = subprocess.run([BIN, "audit", "verify", path], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        if "panicked" in out:
            return "fail", f"{label}: panicked: {out[:300]}"
        if p.returncode != 0:
            return "caught", None
        path_keys = label.removesuffix(" removed").split(" = ")[0].split(".")
        old = get(base, path_keys)
        if same_meaning(label, old):
            return "same", None
        return "fail", f"{label}: verified as intact (was {json.dumps(old)[:80]})"

    cases = list(F.mutations(base))
    counts = {"caught": 0, "same": 0, "fail": 0}
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("JOBS", "2"))) as ex:
        for kind, msg in ex.map(run, enumerate(cases)):
            counts[kind] += 1
            if msg:
                print(msg, flush=True)
    print(f"{len(cases)} changed reports: {counts['caught']} caught by verify, {counts['same']} "
          f"the same report as read (intact by design), {counts['fail']} failures")
    subprocess.run(["rm", "-rf", home])
    sys.exit(1 if counts["fail"] else 0)


if __name__ == "__main__":
    check_binary()
    main()
