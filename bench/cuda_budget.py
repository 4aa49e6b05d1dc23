#!/usr/bin/env python3
"""bench/cuda_budget.py - the instruction budget of the logits kernels, read from sm_90 SASS.

    make cuda-budget             (or: python3 bench/cuda_budget.py [--nvcc NVCC] [--cuobjdump C])

No GPU needed: vppo_cuda.cu is compiled for sm_90 with `nvcc -Xptxas -v`, its machine code is
disassembled with `cuobjdump -sass`, and for each row kernel and dtype one line is printed:

    BUDGET kernel=<name> dtype=<t> instr_per_elem=<x> fp64_in_loop=<n> spill_bytes=<n>
           regs=<n> blocks_per_sm=<n> ceiling=<fraction of copy bandwidth>

followed by one `TARGET ... met|MISSED` line per target of issue 19, then the per-sequence
section (SEQ lines and their TARGET lines; method in bench/cuda_budget_seq.py). Exit status 1 when a
target is missed (--no-fail: always 0), 2 when the tools are missing.

Counting method (static, no profiler):
* Variant: the kernel template instance for long rows (the largest block size G in its
  name: 256 threads, 64 for the KL/JS pair, rows of >= 2048 entries; shorter rows run a
  warp each), with the
  dtype as the template argument D (0 f32, 1 bf16, 2 f16); the V = 151,936 row of a
  Qwen-class vocabulary runs on it. KL and JS: the pair of rows with the same dtype and
  alignment (the fast walk). backward: k_backward_fast, the training path (lse and entropy
  given), with a bf16 gradient for bf16 logits and f32 otherwise; backward_stats:
  k_backward (same output dtype), which recomputes lse or entropy by the fast logprobs
  walk and runs the same gradient loop (the rows the fast code cannot do are done out of
  line with scalar loads, counted as per-row work), reported without a target of its own.
* Streaming loop: a backward branch at address b to a target t <= b spans [t, b]; a span
  that holds a 16-byte global load (LDG.E.128) and no smaller such span is a streaming
  loop. Its instruction count is every instruction in the span (NOPs excluded): a
  conditional path inside the loop (a rescale) is counted as if taken on every iteration,
  so the figure is an upper bound for the steady state.
  Elements per iteration = (16-byte loads in the span) * (16 / element size) / (matrices
  read: 2 for the KL pair, else 1). instr_per_elem = loop instructions / elements per
  iteration, summed over the kernel's streaming loops; for k_backward only the loop that
  stores (STG) counts: the gradient pass when lse and entropy are given (the training path
  after a forward that kept them); the statistics pass of the other case is logprobs' loop.
* Per-row work (reductions, rescales, head/tail, the exact id element): every instruction
  of the kernel outside its streaming loops, a non-streaming inner loop (a shuffle tree
  left rolled) weighted by 5 trips, times the warps of a row (G / 32), amortised over the
  V = 151,936 elements of a row: per-row warp-instructions * 32 / V is added to
  instr_per_elem (thread-instructions per element, i.e. warp-instructions per 32 elements).
  This includes the code after the kernel's EXIT that it CALLs (the out-of-line step of the
  fast walks: the first step of every thread, a step whose speculative terms fail the
  check, head, tail and last chunks; its loops weighted 5 as above), counted once per warp
  and row. Not counted: the blocks a BRA.DIV jumps to (a shuffle's fallback for a warp
  that is not converged; the row kernels shuffle with every lane). A backward branch is
  recognised with or without a predicate operand (BRA P3, 0x...); a jump back from code
  past an unconditional EXIT into the kernel is not a loop.
* fp64_in_loop: instructions of a streaming loop whose opcode works on doubles (D*,
  F2F/I2F/F2I with .F64, MUFU.*64H, DSETP...).
* spill_bytes, regs: ptxas -v (spill stores + spill loads, registers) for that instance.
* blocks_per_sm on sm_90: min(32, 64 warps / warps per block, 65,536 registers / (regs
  rounded up to 8 per thread * threads), 228 KiB shared / (static shared + 1 KiB)).
* ceiling = min(1, issue, memory-level parallelism), both H200 figures:
  issue = (132 SMs * 1.98 GHz * 4 warp-issues per clock * 32) / (4.3 TB/s / bytes per
  element) / instr_per_elem: the thread-instructions an element may cost while HBM streams
  at its copy bandwidth (15.6 for a bf16 logprobs element, bytes = element size; twice the
  element size for the KL pair and for the backward, which reads and writes);
  mlp = bytes in flight per SM (blocks_per_sm * threads * 16-byte loads per loop iteration
  * 16) / (4.3 TB/s * 600 ns loaded latency / 132 SMs), the Little's-law requirement.
  It is an upper bound on the fraction of copy bandwidth, not a measurement.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

V = 151936
SMS, CLOCK, ISSUE_PER_CLK = 132, 1.98e9, 4
BW, LATENCY = 4.3e12, 600e-9
DTYPES = {0: ("f32", 4), 1: ("bf16", 2), 2: ("f16", 2)}
# kernel name in the report, mangled stem, matrices read, bytes per element factor, which loops
KERNELS = [
    ("logprobs", "k_logprobs", 1, 1, "all"),
    ("kl_pair", "k_dependency", 2, 2, "all"),   # the JS=false instance
    ("js_pair", "k_dependency", 2, 2, "all"),   # the JS=true instance (two passes)
    ("backward", "k_backward_fast", 1, 2, "store"),   # lse and entropy given (training)
    ("backward_stats", "k_backward", 1, 2, "store"),  # lse or entropy recomputed, exact rows
]
TARGETS = {  # kernel -> (max instr_per_elem, min ceiling)
    "logprobs": (8.0, 0.9), "kl_pair": (12.0, 0.85), "backward": (8.0, 0.9),
}

INSN = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?);")


def find_tool(name, given):
    if given:
        return given
    p = shutil.which(name)
    if p:
        return p
    for d in ("/usr/local/cuda/bin",):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    try:   # the pip wheels nvidia-cuda-cuobjdump / triton ship one
        import glob
        import site
        for s in site.getsitepackages():
            for g in glob.glob(os.path.join(s, "*", "**", "bin", name), recursive=True):
                return g
    except Exception:
        pass
    return None


def parse_sass(text):
    funcs, cur = {}, None
    for line in text.splitlines():
        if "Function :" in line:
            cur = line.split("Function :")[1].strip()
            funcs[cur] = []
            continue
        m = INSN.search(line)
        if cur and m:
            ins = m.group(2).strip()
            if ins.startswith("NOP"):
                continue
            funcs[cur].append((int(m.group(1), 16), ins))
    return funcs


def parse_ptxas(text):
    info, cur = {}, None
    for line in text.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            cur = m.group(1)
            info.setdefault(cur, {"spill": 0, "regs": 0, "smem": 0})
            continue
        m = re.search(r"Compiling entry function '(\S+)' for 'sm_90'", line)
        if m:
            cur = m.group(1)
            info.setdefault(cur, {"spill": 0, "regs": 0, "smem": 0})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            info[cur]["spill"] = int(m.group(1)) + int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            info[cur]["regs"] = int(m.group(1))
            m2 = re.search(r"(\d+) bytes smem", line)
            info[cur]["smem"] = int(m2.group(1)) if m2 else 0
    return info


def opcode(ins):
    ins = re.sub(r"^@!?U?P[T0-9]\s+", "", ins)
    return ins.split()[0] if ins else ""


def is_fp64(ins):
    op = opcode(ins)
    base = op.split(".")[0]
    return base in ("DADD", "DMUL", "DFMA", "DSETP", "DMNMX", "DSET") or \
        (base in ("F2F", "I2F", "F2I", "FRND") and ".F64" in op) or (base == "MUFU" and "64H" in op)


def loops(code):
    """Spans [t, b] (indices) of backward branches."""
    addr = {a: i for i, (a, _) in enumerate(code)}
    out = []
    for i, (a, ins) in enumerate(code):
        # BRA [.U|.DIV ...] [!]P<n>, 0x<target>: the predicate operand is optional
        m = re.search(r"\bBRA(?:\.\S+)?\s+(?:!?U?P[T0-9],\s*)?(?:`\()?[^0-9]*0x([0-9a-f]+)", ins)
        if m and opcode(ins).startswith("BRA"):
            t = int(m.group(1), 16)
            # a jump back from out-of-line code (past an unconditional EXIT: the divergent-
            # shuffle fallbacks, called functions) into the kernel is not a loop
            if t <= a and t in addr and not any(code[k][1] == "EXIT" for k in range(addr[t], i)):
                out.append((addr[t], i))
    return out


def analyse(code, mats, es, which):
    spans = loops(code)
    has_ldg = [any("LDG.E.128" in code[k][1] for k in range(s, e + 1)) for s, e in spans]
    stream = []
    for n, (s, e) in enumerate(spans):
        if not has_ldg[n]:
            continue
        inner = any(has_ldg[o] and (s2, e2) != (s, e) and s <= s2 and e2 <= e for o, (s2, e2) in enumerate(spans))
        if not inner:
            stream.append((s, e))
    stream = sorted(set(stream))
    used = stream
    if which == "store":
        used = [(s, e) for s, e in stream if any(code[k][1].startswith("STG") or " STG" in code[k][1]
                                                   for k in range(s, e + 1))]
    ipe, fp64, loads = 0.0, 0, 0
    for s, e in used:
        body = code[s:e + 1]
        n_ldg = sum("LDG.E.128" in ins for _, ins in body)
        ipe += len(body) / (n_ldg * (16 // es) / mats)
        fp64 += sum(is_fp64(ins) for _, ins in body)
        loads = max(loads, n_ldg)
    in_stream = set()
    for s, e in stream:
        in_stream.update(range(s, e + 1))
    weight = [1] * len(code)
    for s, e in spans:
        if (s, e) in stream or any(s <= s2 and e2 <= e for s2, e2 in stream):
            continue   # a streaming loop, or the row loop around one
        for k in range(s, e + 1):
            weight[k] = 5
    for k in divergent_fallbacks(code):
        weight[k] = 0
    per_row = sum(weight[k] for k in range(len(code)) if k not in in_stream)
    return ipe, fp64, loads, per_row, len(used)


def divergent_fallbacks(code):
    """Indices of the out-of-line blocks a BRA.DIV jumps to (a shuffle's fallback for a warp
    that is not converged, placed after the kernel's EXIT): from the target to the first
    unconditional branch back. The row kernels call their shuffles with every lane of the
    group, so a converged warp never runs them."""
    addr = {a: i for i, (a, _) in enumerate(code)}
    out = set()
    for a, ins in code:
        m = re.search(r"\bBRA\.DIV\s+\S+,\s*0x([0-9a-f]+)", ins)
        if not m or int(m.group(1), 16) not in addr:
            continue
        k = addr[int(m.group(1), 16)]
        while k < len(code):
            out.add(k)
            op = code[k][1]
            mb = re.match(r"BRA\s+(?:`\()?0x([0-9a-f]+)", op)
            if mb and int(mb.group(1), 16) < code[k][0]:
                break
            k += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nvcc")
    ap.add_argument("--cuobjdump")
    ap.add_argument("--src", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vppo_cuda.cu"))
    ap.add_argument("--no-fail", action="store_true")
    ap.add_argument("--keep", help="directory to keep ptxas.txt and sass.txt in")
    a = ap.parse_args()
    nvcc, cuobjdump = find_tool("nvcc", a.nvcc), find_tool("cuobjdump", a.cuobjdump)
    if not nvcc or not cuobjdump:
        print("cuda-budget: needs nvcc and cuobjdump (pip install nvidia-cuda-cuobjdump)", file=sys.stderr)
        return 2
    tmp = a.keep or tempfile.mkdtemp(prefix="vppo_budget_")
    os.makedirs(tmp, exist_ok=True)
    obj = os.path.join(tmp, "vppo_cuda_sm90.o")
    r = subprocess.run([nvcc, "-std=c++14", "-O3", "-gencode", "arch=compute_90,code=sm_90", "-Xptxas", "-v",
                        "-c", a.src, "-o", obj], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        return 1
    ptx = parse_ptxas(r.stdout + r.stderr)
    sass = subprocess.run([cuobjdump, "-sass", obj], capture_output=True, text=True, check=True).stdout
    if a.keep:
        open(os.path.join(tmp, "ptxas.txt"), "w").write(r.stdout + r.stderr)
        open(os.path.join(tmp, "sass.txt"), "w").write(sass)
    funcs = parse_sass(sass)
    issue_rate = SMS * CLOCK * ISSUE_PER_CLK * 32            # thread-instructions per second
    need_inflight = BW * LATENCY / SMS                         # bytes per SM
    missed = 0
    rows = []
    for name, stem, mats, bfac, which in KERNELS:
        for d, (dt, es) in DTYPES.items():
            # the fast backward's output dtype: bf16 for bf16 logits, else f32
            tail = {"kl_pair": "Lb0E", "js_pair": "Lb1E", "backward": "Li%dE" % (1 if d == 1 else 0),
                    "backward_stats": "Li%dE" % (1 if d == 1 else 0)}.get(name, "")
            pat = re.compile(re.escape(stem) + r"ILi%dELi(\d+)E%s" % (d, tail))
            cands = [(int(pat.search(f).group(1)), f) for f in funcs if pat.search(f)]
            if not cands:
                print("BUDGET kernel=%s dtype=%s missing" % (name, dt))
                missed += 1
                continue
            g, fn = max(cands)
            ipe, fp64, loads, per_row, nloops = analyse(funcs[fn], mats, es, which)
            ipe_total = ipe + per_row * (g // 32) * 32.0 / V
            info = ptx.get(fn, {"spill": -1, "regs": 0, "smem": 0})
            regs = max(info["regs"], 1)
            wpb = g // 32
            bps = min(32, 64 // wpb, 65536 // (((regs + 7) // 8 * 8) * g), (228 * 1024) // (info["smem"] + 1024))
            out_es = 2 if dt == "bf16" else 4
            bwd = name.startswith("backward")
            bytes_el = es * (mats if not bwd else 1) + (out_es if bwd else 0)
            issue = issue_rate / (BW / bytes_el) / ipe_total if ipe_total > 0 else 0.0
            mlp = bps * g * loads * 16 / need_inflight
            ceiling = min(1.0, issue, mlp)
            print("BUDGET kernel=%s dtype=%s instr_per_elem=%.2f fp64_in_loop=%d spill_bytes=%d regs=%d "
                  "blocks_per_sm=%d ceiling=%.2f" % (name, dt, ipe_total, fp64, info["spill"], info["regs"], bps, ceiling))
            rows.append((name, dt, ipe_total, fp64, info["spill"], loads, ceiling, ipe, per_row, g))
    print("# loop-only instr_per_elem, per-row warp-instructions, block size, 16-byte loads per iteration:")
    for name, dt, ipe_total, fp64, spill, loads, ceiling, ipe, per_row, g in rows:
        print("#   %-8s %-4s loop=%.2f per_row=%d G=%d loads=%d" % (name, dt, ipe, per_row, g, loads))

    def target(text, ok):
        nonlocal missed
        print("TARGET %s: %s" % (text, "met" if ok else "MISSED"))
        missed += 0 if ok else 1
    for name, dt, ipe_total, fp64, spill, loads, ceiling, _, _, _ in rows:
        if name in TARGETS and dt == "bf16":
            lim, ceil_min = TARGETS[name]
            target("%s bf16 instr_per_elem %.2f <= %g" % (name, ipe_total, lim), ipe_total <= lim)
            target("%s bf16 ceiling %.2f >= %g" % (name, ceiling, ceil_min), ceiling >= ceil_min)
    target("no FP64 in any streaming loop", all(r[3] == 0 for r in rows))
    target("0 spill bytes in every row kernel", all(r[4] == 0 for r in rows))
    target(">= 2 independent 16-byte loads per thread per iteration", all(r[5] >= 2 for r in rows))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cuda_budget_seq   # the per-sequence section (its method in its docstring)
    cuda_budget_seq.report(funcs, ptx, open(a.src).read(), is_fp64, target)
    return 1 if missed and not a.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
