"""What the structured fuzzers (fuzz_json_files.py, fuzz_gguf_metadata.py) share: the release
binary's `capture` on one changed model, judged, and the loop over every case.

A run passes when it captures or refuses with an error that names the model (`named`: the
folder or file as the error writes it, or a file name); it fails on a panic, an abort (an
allocation refused under the memory limit is one), a signal, a hang past LIMIT_S, or an error
that names nothing. LIMIT_S (default 30) seconds a run, MEM_GB (default 4) its address space,
JOBS (default 1) runs at a time.
"""
import concurrent.futures
import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target", "release", "localist"))
LIMIT_S = float(os.environ.get("LIMIT_S", "30"))
MEM = int(float(os.environ.get("MEM_GB", "4")) * (1 << 30))
TEXT = "the quick brown fox jumps over the lazy dog and then the dog sleeps by the warm fire"


def first(err):
    """The lines that say what went wrong, not the backtrace."""
    keep = [l for l in err.splitlines() if "panicked" in l or "failed" in l or "Error" in l]
    return " / ".join((keep or err.splitlines() or [""])[:3])[:400]


def limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEM, MEM))


def capture(model, text, what, label, named):
    """`localist capture` of `text` on `model`: "captured", "refused", or the failure."""
    cmd = [BIN, "capture", "-c", model, "--text", text, "--threads", "1", "--format", "csv"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT_S,
                           preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return f"{what}: {label}: HANG past {LIMIT_S:.0f} s"
    err = p.stderr.strip()
    if p.returncode == 0:
        return "captured"
    if "panicked" in err or p.returncode < 0 or p.returncode in (101, 134):
        return f"{what}: {label}: rc {p.returncode}: {first(err)}"
    if err.startswith("error: the text:"):
        return "refused"  # a vocabulary changed so that the text is not in it
    if not any(n in err for n in named):
        return f"{what}: {label}: error names no file: {err[-300:]}"
    return "refused"


def drive(jobs, run, what):
    """Run every job (`run(*job)`), print each failure and a summary; exit 1 on a failure."""
    failures, counts = [], {"captured": 0, "refused": 0}
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("JOBS", "1"))) as ex:
        for i, r in enumerate(ex.map(lambda j: run(*j), jobs)):
            if r in counts:
                counts[r] += 1
            else:
                failures.append(r)
                print(r, flush=True)
            if (i + 1) % 500 == 0:
                print(f"... {i + 1} of {len(jobs)}", file=sys.stderr, flush=True)
    print(f"{len(jobs)} cases over {what}: {counts['captured']} captured, "
          f"{counts['refused']} refused naming the file, {len(failures)} failures")
    sys.exit(1 if failures else 0)


def check_binary():
    os.path.exists(BIN) or sys.exit(f"no binary at {BIN}")
