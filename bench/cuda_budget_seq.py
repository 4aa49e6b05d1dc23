"""bench/cuda_budget_seq.py - the per-sequence section of `make cuda-budget` (issue 19 item 3).

Called by bench/cuda_budget.py with the same sm_90 compile (ptxas -v, cuobjdump -sass of
vppo_cuda.cu); prints one line per per-sequence kernel

    SEQ kernel=<name> regs=<n> spill_bytes=<n> smem=<bytes> blocks_per_sm=<n>
        barriers_per_block=<n> barriers_per_seq=<n> [per_step=<n>] score_reads=<n>

and TARGET lines (met/MISSED) for the path's targets. No GPU involved.

Counting method:
* regs, spill_bytes (spill stores + loads), smem: ptxas -v; blocks_per_sm as for the row
  kernels: min(32, 64 warps / 8 warps, 65,536 / (regs rounded up to 8 * 256 threads),
  228 KiB / (static shared + 1 KiB)).
* Barriers on the path taken, from the SASS control flow: basic blocks split at branch
  targets and after branches; BRA.DIV (the compiler's fallback for a warp collective
  reached by a diverged warp: a copy of the same collective) is taken as not taken;
  BSSY/BSYNC/WARPSYNC are no-ops. A backward branch closes a loop. The sequence loop is
  the outermost loop holding a BAR.SYNC; barriers_per_seq is the largest number of
  BAR.SYNC on any path through one trip of it (header to back edge, inner back edges
  removed: each barrier of an inner loop counted once), so where a kernel has a shared-
  memory and a global-memory version of a phase, only one is on a path, and every optional
  phase (a radix pass, the tie ranking) is counted as taken: an upper bound for any
  sequence. barriers_per_block: the largest count on a path from the entry to that loop
  (stopped()'s barrier); the host launches one block per sequence (up to 2^22), so the
  sequence pays it too. An inner loop holding a barrier (k_soft's root steps) is reported
  as per_step: each step after the first adds that many.
* Soft mask worst case: k_seq_a's barriers + k_soft's barriers_per_block + barriers_per_seq
  (the first root step included) + per_step * (SOFT_MAX_STEPS - 1), SOFT_MAX_STEPS read
  from vppo_cuda.cu (the root loop's hard cap: every step also evaluates SOFT_GRID points
  splitting the bracket, so the cap is reached with the bracket 1/(SOFT_GRID + 1)^cap of
  its first width). The count is static: a sequence that converges earlier pays less.
* score_reads: passes over the scores in global memory for a sequence of up to SEQ_SMEM
  tokens (keys or scores in shared memory), declared from the code (vppo_cuda.cu's
  comments on k_seq_b and k_soft), not measured; longer sequences take the global path.
* Histogram: k_seq_b's SASS has MATCH.ANY (lanes with equal digits aggregated) and no
  64-bit shared atomic (ATOMS with .64).
* FP64 in the soft mask's per-token loop: the loops nested in the root-step loop that hold
  no barrier (the per-token sums); FP64 opcodes as for the row kernels.
"""
import re

# kernel, score passes over global memory for sequences <= SEQ_SMEM (declared)
SEQ_KERNELS = [("k_seq_a", 0), ("k_seq_b", 1), ("k_loss", 0), ("k_soft", 2)]
MAX_BARRIERS = 12
OLD_SEQ_B_REGS = 80   # the figure for k_seq_b before this work


def _blocks(code):
    """Basic blocks: list of (start index, end index, successors as start indices)."""
    addr = {a: i for i, (a, _) in enumerate(code)}
    leaders = {0}
    targets = {}
    for i, (a, ins) in enumerate(code):
        op = _op(ins)
        if op.startswith("BRA") and not op.startswith("BRA.DIV"):
            m = re.search(r"0x([0-9a-f]+)", ins.split(op, 1)[1])
            if m and int(m.group(1), 16) in addr:
                t = addr[int(m.group(1), 16)]
                targets[i] = t
                leaders.add(t)
                leaders.add(i + 1)
        elif op.startswith("EXIT") or op.startswith("RET"):
            leaders.add(i + 1)
    starts = sorted(x for x in leaders if x < len(code))
    out = []
    for k, s in enumerate(starts):
        e = (starts[k + 1] if k + 1 < len(starts) else len(code)) - 1
        ins = code[e][1]
        op = _op(ins)
        cond = ins.lstrip().startswith("@")
        succ = []
        if e in targets:
            succ.append(targets[e])
            if cond:
                succ.append(e + 1)
        elif (op.startswith("EXIT") or op.startswith("RET")) and not cond:
            pass
        else:
            succ.append(e + 1)
        out.append((s, e, [x for x in succ if x < len(code)]))
    return out


def _op(ins):
    ins = re.sub(r"^\s*@!?U?P[T0-9]\s+", "", ins)
    return ins.split()[0] if ins.split() else ""


def _bars(code, s, e):
    return sum(1 for k in range(s, e + 1) if _op(code[k][1]).startswith("BAR.SYNC"))


def _longest(code, blocks, lo, hi, start):
    """Most BAR.SYNC on a forward path from block `start` within [lo, hi] (back edges removed)."""
    best = {start: _bars(code, *[(b[0], b[1]) for b in blocks if b[0] == start][0])}
    for s, e, succ in blocks:   # address order is a topological order of the forward edges
        if s not in best or s < lo or e > hi:
            continue
        for t in succ:
            if t <= e or t < lo or t > hi:
                continue
            tb = [b for b in blocks if b[0] == t][0]
            v = best[s] + _bars(code, tb[0], tb[1])
            if v > best.get(t, -1):
                best[t] = v
    return best


def _loops(code, blocks):
    """(header index, latch index) of each backward branch."""
    out = []
    for s, e, succ in blocks:
        for t in succ:
            if t <= e:
                out.append((t, e))
    return out


def analyse_seq(code):
    blocks = _blocks(code)
    loops = _loops(code, blocks)
    with_bar = [(h, l) for h, l in loops if _bars(code, h, l) > 0]
    if not with_bar:
        return 0, _bars(code, 0, len(code) - 1), 0, [], []
    outer = [(h, l) for h, l in with_bar if not any(h2 <= h and l <= l2 and (h2, l2) != (h, l) for h2, l2 in with_bar)]
    h, l = min(outer)
    best = _longest(code, blocks, h, l, h)
    per_seq = max(v for s, v in best.items() if s <= l)
    entry = _longest(code, blocks, 0, h, 0)
    per_block = max([v for s, v in entry.items() if s < h] + [0])
    inner = [(h2, l2) for h2, l2 in with_bar if (h2, l2) != (h, l) and h <= h2 and l2 <= l]
    per_step = max([_bars(code, h2, l2) for h2, l2 in inner] + [0])
    token_loops = [(h3, l3) for h3, l3 in loops if _bars(code, h3, l3) == 0
                   and any(h2 <= h3 and l3 <= l2 for h2, l2 in inner)]
    return per_block, per_seq, per_step, inner, token_loops


def report(funcs, ptx, src_text, is_fp64, target):
    """Prints the section; target(text, ok) prints and counts a TARGET line."""
    m = re.search(r"SEQ_SMEM\s*=\s*(\d+)", src_text)
    seq_smem = int(m.group(1)) if m else 0
    print("# per-sequence path (vppo_cuda_step/_prepare/_topk_mask/_soft_mask); method: bench/cuda_budget_seq.py")
    rows = {}
    for name, reads in SEQ_KERNELS:
        fn = [f for f in funcs if re.search(r"\d%s[A-Z]" % re.escape(name), f)]
        if not fn:
            print("SEQ kernel=%s missing" % name)
            target("%s present" % name, False)
            continue
        code = funcs[fn[0]]
        info = ptx.get(fn[0], {"spill": -1, "regs": 0, "smem": 0})
        regs = max(info["regs"], 1)
        bps = min(32, 64 // 8, 65536 // (((regs + 7) // 8 * 8) * 256), (228 * 1024) // (info["smem"] + 1024))
        per_block, per_seq, per_step, inner, token_loops = analyse_seq(code)
        fp64_tok = sum(is_fp64(code[k][1]) for h, l in token_loops for k in range(h, l + 1))
        atom64 = sum(1 for _, ins in code if _op(ins).startswith("ATOMS") and ".64" in _op(ins))
        match = sum(1 for _, ins in code if _op(ins).startswith("MATCH.ANY"))
        rows[name] = dict(regs=info["regs"], spill=info["spill"], smem=info["smem"], bps=bps, per_block=per_block,
                          per_seq=per_seq, per_step=per_step, reads=reads, fp64_tok=fp64_tok, atom64=atom64,
                          match=match, n_inner=len(inner), n_tok=len(token_loops))
        print("SEQ kernel=%s regs=%d spill_bytes=%d smem=%d blocks_per_sm=%d barriers_per_block=%d "
              "barriers_per_seq=%d%s score_reads=%s" % (
                  name, info["regs"], info["spill"], info["smem"], bps, per_block, per_seq,
                  " per_step=%d" % per_step if per_step else "", reads if reads else "-"))
    if not all(k in rows for k, _ in SEQ_KERNELS):
        return
    a, b, lo, so = rows["k_seq_a"], rows["k_seq_b"], rows["k_loss"], rows["k_soft"]
    topk = b["per_block"] + b["per_seq"]
    step = a["per_block"] + a["per_seq"] + topk + lo["per_block"] + lo["per_seq"]
    soft_fixed = so["per_block"] + so["per_seq"]
    m = re.search(r"SOFT_MAX_STEPS\s*=\s*(\d+)", src_text)
    cap = int(m.group(1)) if m else 0
    soft_worst = a["per_block"] + a["per_seq"] + soft_fixed + so["per_step"] * (cap - 1)
    print("# step/prepare: k_seq_a, k_batch (one block for the batch), k_seq_b, k_loss (step), k_final;"
          " topk_mask: k_seq_a, k_seq_b, k_final; soft_mask: k_seq_a, k_soft")
    g = re.search(r"SOFT_GRID\s*=\s*(\d+)", src_text)
    print("# k_soft: %d barriers + %d per root step after the first (Newton point and %s grid points per step,"
          " <= %d steps)" % (soft_fixed, so["per_step"], g.group(1) if g else "?", cap))
    target("top-k (k_seq_b) barriers per sequence %d <= %d" % (topk, MAX_BARRIERS), topk <= MAX_BARRIERS)
    target("step path (k_seq_a + k_seq_b + k_loss) barriers per sequence %d <= %d" % (step, MAX_BARRIERS),
           step <= MAX_BARRIERS)
    target("soft mask worst case (k_seq_a + k_soft, %d root steps) barriers per sequence %d <= %d"
           % (cap, soft_worst, MAX_BARRIERS), 0 < cap and soft_worst <= MAX_BARRIERS)
    target("scores read at most twice (<= %d tokens): top-k %d, soft mask %d" % (seq_smem, b["reads"], so["reads"]),
           b["reads"] <= 2 and so["reads"] <= 2)
    target("keys in shared memory up to %d tokens (k_seq_b smem %d >= %d)" % (seq_smem, b["smem"], 4 * seq_smem),
           seq_smem >= 4096 and b["smem"] >= 4 * seq_smem)
    target("warp-aggregated 32-bit histogram (k_seq_b: %d MATCH.ANY, %d 64-bit shared atomics)"
           % (b["match"], b["atom64"]), b["match"] > 0 and b["atom64"] == 0)
    target("soft mask per-token root loop in float (%d FP64 instructions in %d per-token loops)"
           % (so["fp64_tok"], so["n_tok"]), so["n_tok"] > 0 and so["fp64_tok"] == 0)
    target("k_seq_b regs %d < %d and 0 spill bytes (%d)" % (b["regs"], OLD_SEQ_B_REGS, b["spill"]),
           b["regs"] < OLD_SEQ_B_REGS and b["spill"] == 0)
    target("0 spill bytes in the per-sequence kernels",
           all(rows[k]["spill"] == 0 for k, _ in SEQ_KERNELS))
