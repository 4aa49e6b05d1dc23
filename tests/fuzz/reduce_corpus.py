#!/usr/bin/env python3
"""Reduce a libFuzzer corpus to a few dozen inputs that cover the same code.

usage: reduce_corpus.py [--max N] FUZZER OUT_DIR IN_DIR [IN_DIR...]

Every input of the IN_DIRs is run alone through FUZZER (libFuzzer's merge mode with a
control file, which lists the program counters an input covers); then inputs are picked
greedily, each time the one that covers the most program counters not yet covered (the
smaller on ties), until everything the whole corpus covers is covered or N inputs are
picked (default 60: the long tail adds one or two program counters per input). OUT_DIR is
replaced by the picked inputs, plus every file whose name starts with "regression-" (the
inputs of fixed defects, kept whatever they cover). Used by make fuzz-corpus.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def covered_pcs(fuzzer, path, scratch):
    """The program counters one input covers, from libFuzzer's merge control file."""
    one = os.path.join(scratch, "one")
    out = os.path.join(scratch, "out")
    control = os.path.join(scratch, "control")
    for d in (one, out):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    shutil.copy(path, one)
    if os.path.exists(control):
        os.remove(control)
    subprocess.run([fuzzer, "-merge=1", "-use_counters=0", "-use_value_profile=0",
                    "-merge_control_file=" + control, out, one],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    pcs = set()
    if os.path.exists(control):
        with open(control) as f:
            for line in f:
                if line.startswith("COV "):
                    pcs.update(int(x) for x in line.split()[2:])
    return pcs


def main():
    args, limit = sys.argv[1:], 60
    if len(args) >= 2 and args[0] == "--max":
        limit, args = int(args[1]), args[2:]
    if len(args) < 3:
        sys.exit(__doc__)
    fuzzer, out_dir, in_dirs = args[0], args[1], args[2:]
    files, keep, seen = [], [], set()
    for d in in_dirs:
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                data = f.read()
            digest = hashlib.sha1(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            (keep if name.startswith("regression-") else files).append((name, path, data))
    with tempfile.TemporaryDirectory() as scratch:
        cover = [(name, data, covered_pcs(fuzzer, path, scratch)) for name, path, data in files]
    everything = set().union(*(c for _, _, c in cover)) if cover else set()
    picked, done = [], set()
    while done != everything and len(picked) < limit:
        best = max(cover, key=lambda c: (len(c[2] - done), -len(c[1])))
        if not best[2] - done:
            break
        picked.append(best)
        done |= best[2]
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    for name, _, data in keep:
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    for _, data, _ in picked:
        with open(os.path.join(out_dir, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print("%s: %d inputs of %d cover %d of the %d program counters the corpus covers; %d regression inputs kept"
          % (os.path.basename(fuzzer), len(picked), len(files), len(done), len(everything), len(keep)))


if __name__ == "__main__":
    main()
