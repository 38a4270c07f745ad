#!/usr/bin/env python3
"""What the analyzer says when the program forgot one recorder call.

Takes real clean traces (fixtures/traces/real/*.expected.json with verdict
`clean`), leaves one recorder line out at random the way the program would
have written the trace without that call (the recorder's later `seq=` close
up; for an `rx`/`tx` line without `prod=`, an index the recorder counts
itself, so do the same socket's later `idx=`), analyzes each, and tallies
the verdicts. A forgotten call is the program's recording mistake: no
trace may come out `kernel` (exit 1 if one does, with the line left out).

    scripts/forgotten-calls.py [--trials N] [--seed S] [--bin XSKDBG] [--kernel-lines] [NAME ...]

NAME is a fixture's name without its extension (default: every clean real
fixture). --kernel-lines leaves out a kernel line instead (a probe that
missed an event). Needs a built `xskdbg` (default: $CARGO_TARGET_DIR or
target, release).
"""
import argparse
import collections
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.path.join(TOP, "fixtures", "traces", "real")
DECLS = (b" umem ", b" pool ", b" sock ", b" probe ", b" kdrain", b" stats ", b" audit", b" violation ")
SEQ = re.compile(rb" seq=([0-9a-f]+)")


def clean_fixtures():
    out = []
    for f in sorted(os.listdir(REAL)):
        if f.endswith(".expected.json"):
            with open(os.path.join(REAL, f)) as fh:
                if json.load(fh).get("verdict") == "clean":
                    out.append(f[: -len(".expected.json")])
    return out


def load(name):
    for ext in (".txt", ".txt.gz"):
        p = os.path.join(REAL, name + ext)
        if os.path.exists(p):
            data = gzip.open(p).read() if ext.endswith(".gz") else open(p, "rb").read()
            return data.split(b"\n")
    sys.exit(f"forgotten-calls: no fixture {name} in {REAL}")


def forget(lines, i):
    """`lines` without line `i`, later seq= and self-counted idx= closed up."""
    gone = lines[i]
    out = lines[:i] + lines[i + 1 :]
    m = SEQ.search(gone)
    if m:
        s0 = int(m.group(1), 16)

        def fix(l):
            mm = SEQ.search(l)
            if not mm:
                return l
            s = int(mm.group(1), 16)
            if s > s0 and (s >> 32) == (s0 >> 32):
                return l[: mm.start(1)] + b"%x" % (s - 1) + l[mm.end(1) :]
            return l

        out = out[:i] + [fix(l) for l in out[i:]]
    mo = re.search(rb"xskdbg:1 (tx|rx) .*?sk=(\S+) .*?idx=([0-9a-f]+) n=([0-9a-f]+)", gone)
    if mo and b" prod=" not in gone:
        op, sk, n0 = mo.group(1), mo.group(2), int(mo.group(4), 16)
        pat = re.compile(rb"xskdbg:1 " + op + rb" .*?sk=" + re.escape(sk) + rb" .*?idx=([0-9a-f]+)")

        def fixi(l):
            mm = pat.search(l)
            if not mm:
                return l
            v = (int(mm.group(1), 16) - n0) & 0xFFFFFFFF
            return l[: mm.start(1)] + b"%x" % v + l[mm.end(1) :]

        out = out[:i] + [fixi(l) for l in out[i:]]
    return out


def verdicts(report):
    out = set()
    for f in report.get("findings", []):
        for g in [f] + f.get("also", []) + f.get("consequences", []):
            if "rule" in g and "verdict" in g:
                out.add((g["rule"], g["verdict"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40, help="lines left out per fixture (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=None, help="the xskdbg binary")
    ap.add_argument("--kernel-lines", action="store_true", help="leave out kernel lines instead")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    xskdbg = a.bin or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(TOP, "target")), "release", "xskdbg")
    if not os.access(xskdbg, os.X_OK):
        sys.exit(f"forgotten-calls: no {xskdbg}: build it (cargo build --release) or pass --bin")
    names = a.names or clean_fixtures()
    total = collections.Counter()
    blamed = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.txt")
        for name in names:
            lines = load(name)

            def wanted(l):
                if b"xskdbg:1 " not in l or any(k in l for k in DECLS):
                    return False
                return bool(re.search(rb"xskdbg:1 k", l)) == a.kernel_lines

            cand = [i for i, l in enumerate(lines) if wanted(l)]
            tally = collections.Counter()
            rnd = random.Random(a.seed)
            for _ in range(a.trials if cand else 0):
                i = rnd.choice(cand)
                with open(path, "wb") as fh:
                    fh.write(b"\n".join(forget(lines, i)))
                r = subprocess.run([xskdbg, "analyze", "--json", path], capture_output=True)
                try:
                    rep = json.loads(r.stdout)
                    v = rep["summary"]["verdict"]
                except (ValueError, KeyError):
                    v = f"error (exit {r.returncode})"
                    rep = {}
                tally[v] += 1
                if any(x == "kernel" for _, x in verdicts(rep)) or v.startswith("error"):
                    blamed.append((name, lines[i][:160].decode(errors="replace").strip(), sorted(verdicts(rep))))
            total.update(tally)
            print(f"{name}: {len(cand)} candidate lines, " + ", ".join(f"{v} {n}" for v, n in tally.most_common()))
    print("total: " + ", ".join(f"{v} {n}" for v, n in total.most_common()))
    for name, line, v in blamed:
        print(f"KERNEL or error after leaving out, in {name}:\n  {line}\n  {v}")
    return 1 if blamed else 0


if __name__ == "__main__":
    sys.exit(main())
