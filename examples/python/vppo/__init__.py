"""vppo - vppo.h from Python: numpy arrays and torch tensors through ctypes.

Install (builds vppo.h, and vppo_cuda.cu when nvcc is found; needs only numpy):

    pip install ./examples/python

or, in a checkout, `make shared` and VPPO_LIB=build/libvppo.so with examples/python on
sys.path. Then

    import numpy as np, vppo
    offsets = vppo.offsets_uniform(B, L)                 # padded [B, L] batch
    adv_seq = vppo.group_advantages(rewards, vppo.offsets_uniform(B // 8, 8))
    out, dlogp, prep = vppo.step(vppo.config_default(), offsets, mask,
                                 logp, logp_old, logp_aug, adv_seq)
    # out: dict of vppo_loss_out; dlogp: like logp; prep: dict of the vppo_prepared arrays

For torch autograd (loss.backward()) see vppo.torch. The library is the one built into
this package, else $VPPO_LIB, else ../../build/libvppo.so relative to the package (a
checkout). Every call raises VppoError, with the library's status text, when it fails.

Inputs (numpy arrays, torch CPU tensors, or sequences) and what is converted:
  * per-token and per-sequence values are float32 in C. float32 is used as is; float16,
    bfloat16 (torch), bool and small integers are widened exactly; float64 and other
    integers are accepted only when every element is exactly a float32 (NaN included),
    else ValueError: nothing is rounded behind your back (cast with .astype(np.float32)
    when the rounding is intended).
  * offsets and counts: any integer dtype -> int64; token ids: any integer dtype ->
    int32 when every id fits, else ValueError; floats are a TypeError.
  * masks (mask, select): any dtype, nonzero = 1 (bool is the natural one).
  * logits: float32, float16, or bf16 (torch.bfloat16, or numpy uint16 holding the bits)
    passed as they are, never converted.
  * scalar parameters (eps, temperature, config fields) take the C type of the field:
    a float field holds the nearest float32.
Per-token arrays may have any shape (a padded [B, L] tensor, or flat); they are read flat,
and outputs take the shape of the main per-token input. Sequences are given by `offsets`
(B+1 int64 entries, see offsets_uniform) and an optional `mask` (same number of elements).

When imported, the module checks every ctypes Structure below against the C compiler's
layout (size and offset of every field, from vppo_shared_sizeof / vppo_shared_offsetof
exported by vppo_shared.c) and refuses to load on any difference.

The numbers and names mirror vppo.h. See check_step.py for a test of the whole step
against an independent numpy implementation of the formulas, and tests/ for pytest.
"""
import ctypes
import os

import numpy as np

# ------------------------------------------------------------------ enums (vppo.h)

OK = 0
F32, BF16, F16 = 0, 1, 2
EST_K3, EST_K1, EST_K2, EST_ABS, EST_PROB_DROP = 0, 1, 2, 3, 4
DIV_KL, DIV_KL_REVERSE, DIV_JS = 0, 1, 2
ADV_GRPO, ADV_GRPO_NO_STD, ADV_RLOO, ADV_GRPO_PASSK = 0, 1, 2, 3
TAS_MEAN_PRESERVING, TAS_LINEAR = 0, 1
AGG_TOKEN_MEAN, AGG_SEQ_MEAN_TOKEN_MEAN, AGG_SEQ_MEAN_TOKEN_SUM, AGG_SEQ_MEAN_TOKEN_SUM_NORM = 0, 1, 2, 3
RATIO_TOKEN, RATIO_SEQ, RATIO_SEQ_TOKEN = 0, 1, 2
PG_CLIP, PG_CISPO = 0, 1
KL_NONE, KL_K1, KL_ABS, KL_K2, KL_K3 = 0, 1, 2, 3, 4
RC_TOKEN, RC_SEQ_SUM, RC_SEQ_MEAN, RC_SEQ_MAX = 0, 1, 2, 3
RC_IS_NONE, RC_IS_TRUNCATE, RC_IS_MASK = 0, 1, 2
RC_RS_NONE, RC_RS_K1, RC_RS_K2, RC_RS_K3 = 0, 1, 2, 3

_c_enum = ctypes.c_int   # C enums: int-sized on the ABIs we run on (checked at import)
_f32p = ctypes.POINTER(ctypes.c_float)
_i64p = ctypes.POINTER(ctypes.c_int64)
_i32p = ctypes.POINTER(ctypes.c_int32)
_u8p = ctypes.POINTER(ctypes.c_uint8)

# ------------------------------------------------------------------ structs (vppo.h)


class Seqs(ctypes.Structure):
    _fields_ = [("n_seqs", ctypes.c_int64), ("offsets", _i64p), ("mask", _u8p)]


class Logits(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", _c_enum), ("n_rows", ctypes.c_int64),
                ("vocab", ctypes.c_int64), ("row_stride", ctypes.c_int64), ("temperature", ctypes.c_float)]


class GradOut(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", _c_enum), ("row_stride", ctypes.c_int64)]


class Image(ctypes.Structure):
    _fields_ = [("pixels", _u8p), ("width", ctypes.c_int32), ("height", ctypes.c_int32),
                ("channels", ctypes.c_int32), ("row_stride", ctypes.c_int64)]


class TasStats(ctypes.Structure):
    _fields_ = [("min", ctypes.c_double), ("max", ctypes.c_double), ("n", ctypes.c_int64)]


class TasConfig(ctypes.Structure):
    _fields_ = [("mode", _c_enum), ("beta_min", ctypes.c_float), ("beta_max", ctypes.c_float)]


class TopkInfo(ctypes.Structure):
    _fields_ = [("n_valid", ctypes.c_int64), ("n_selected", ctypes.c_int64), ("threshold_mean", ctypes.c_double),
                ("mean_selected", ctypes.c_double), ("mean_rejected", ctypes.c_double)]


class LossConfig(ctypes.Structure):
    _fields_ = [("clip_low", ctypes.c_float), ("clip_high", ctypes.c_float), ("clip_dual", ctypes.c_float),
                ("pg_kind", _c_enum), ("ratio_level", _c_enum), ("agg", _c_enum), ("agg_norm", ctypes.c_double),
                ("kl_kind", _c_enum), ("kl_coef", ctypes.c_float), ("entropy_coef", ctypes.c_float),
                ("denom", ctypes.c_double)]


class LossOut(ctypes.Structure):
    _fields_ = [("loss", ctypes.c_double), ("pg_loss", ctypes.c_double), ("kl_loss", ctypes.c_double),
                ("entropy_loss", ctypes.c_double), ("clipfrac", ctypes.c_double),
                ("clipfrac_dual", ctypes.c_double), ("ppo_kl", ctypes.c_double),
                ("n_valid", ctypes.c_int64), ("n_selected", ctypes.c_int64)]


class Config(ctypes.Structure):
    _fields_ = [("estimator", _c_enum), ("use_tas", ctypes.c_int), ("tas", TasConfig), ("use_tgf", ctypes.c_int),
                ("topk_ratio", ctypes.c_double), ("loss", LossConfig)]


class Prepared(ctypes.Structure):
    _fields_ = [("dep", _f32p), ("traj_dep", _f32p), ("count", _i64p), ("scale", _f32p), ("adv", _f32p),
                ("select", _u8p), ("stats", TasStats), ("topk", TopkInfo)]


class RcConfig(ctypes.Structure):
    _fields_ = [("is_mode", _c_enum), ("is_level", _c_enum), ("is_upper", ctypes.c_double),
                ("is_lower", ctypes.c_double), ("is_batch_normalize", ctypes.c_int), ("rs_kind", _c_enum),
                ("rs_level", _c_enum), ("rs_upper", ctypes.c_double), ("rs_lower", ctypes.c_double)]


class RcOut(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("n_valid", "n_seqs_valid", "n_kept")] + \
               [(n, ctypes.c_double) for n in ("is_mean", "is_std", "is_min", "is_max", "is_ess", "is_frac_high",
                                               "is_frac_low", "is_norm", "rs_mean", "rs_min", "rs_max",
                                               "rs_frac_token", "rs_frac_seq", "kl", "k3_kl", "chi2_token",
                                               "chi2_seq", "log_ppl_diff")]


_C_NAMES = {Seqs: "vppo_seqs", Logits: "vppo_logits", GradOut: "vppo_grad_out", Image: "vppo_image",
            TasStats: "vppo_tas_stats", TasConfig: "vppo_tas_config", TopkInfo: "vppo_topk_info",
            LossConfig: "vppo_loss_config", LossOut: "vppo_loss_out", Config: "vppo_config",
            Prepared: "vppo_prepared", RcConfig: "vppo_rc_config", RcOut: "vppo_rc_out"}

# ------------------------------------------------------------------ loading


class VppoError(RuntimeError):
    """A vppo_ call returned an error status; .status is the number, .call the function."""

    def __init__(self, call, status):
        self.call, self.status = call, status
        super().__init__("%s: %s (status %d)" % (call, status_string(status), status))


_HERE = os.path.dirname(os.path.abspath(__file__))


def _find_built(stem):
    """The library built into the package by setup.py (a name starting with stem), or None."""
    for name in sorted(os.listdir(_HERE)):
        if name.startswith(stem) and name.endswith((".so", ".dylib", ".dll", ".pyd")):
            return os.path.join(_HERE, name)
    return None


def _load(path=None):
    """VPPO_LIB if set, else the package's own build, else a checkout's build/libvppo.so."""
    if path is None:
        path = (os.environ.get("VPPO_LIB") or _find_built("_libvppo") or
                os.path.join(_HERE, "..", "..", "..", "build", "libvppo.so"))
    if not os.path.exists(path):
        raise ImportError("vppo: %s not found; pip install ./examples/python, or run `make shared` in the "
                          "repository root (or set VPPO_LIB)" % os.path.normpath(path))
    return ctypes.CDLL(path)


_lib = _load()

_SIGNATURES = {
    "vppo_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "vppo_shared_sizeof": (ctypes.c_int64, [ctypes.c_char_p]),
    "vppo_shared_offsetof": (ctypes.c_int64, [ctypes.c_char_p, ctypes.c_char_p]),
    "vppo_offsets_uniform": (ctypes.c_int, [_i64p, ctypes.c_int64, ctypes.c_int64]),
    "vppo_config_default": (Config, []),
    "vppo_group_advantages": (ctypes.c_int, [ctypes.POINTER(Seqs), _f32p, _c_enum, ctypes.c_float, _f32p]),
    "vppo_dependency_sampled": (ctypes.c_int, [ctypes.POINTER(Seqs), _f32p, _f32p, _c_enum, _f32p]),
    "vppo_dependency_logits": (ctypes.c_int, [ctypes.POINTER(Logits), ctypes.POINTER(Logits), _c_enum, _f32p]),
    "vppo_logprobs": (ctypes.c_int, [ctypes.POINTER(Logits), _i32p, _f32p, _f32p, _f32p]),
    "vppo_logprobs_backward": (ctypes.c_int, [ctypes.POINTER(Logits), _i32p, _f32p, _f32p, _f32p, _f32p,
                                              ctypes.POINTER(GradOut)]),
    "vppo_tas_stats_compute": (ctypes.c_int, [_f32p, _i64p, ctypes.c_int64, ctypes.POINTER(TasStats)]),
    "vppo_prepare": (ctypes.c_int, [ctypes.POINTER(Config), ctypes.POINTER(Seqs), _f32p, _f32p, _f32p, _f32p,
                                    ctypes.POINTER(TasStats), ctypes.POINTER(Prepared)]),
    "vppo_step": (ctypes.c_int, [ctypes.POINTER(Config), ctypes.POINTER(Seqs), _f32p, _f32p, _f32p, _f32p,
                                 _f32p, ctypes.POINTER(Prepared), _f32p, ctypes.POINTER(LossOut)]),
    "vppo_policy_loss": (ctypes.c_int, [ctypes.POINTER(LossConfig), ctypes.POINTER(Seqs), _f32p, _f32p, _f32p,
                                        _f32p, _u8p, _f32p, _f32p, ctypes.POINTER(LossOut)]),
    "vppo_rc_config_default": (RcConfig, []),
    "vppo_rollout_correction": (ctypes.c_int, [ctypes.POINTER(RcConfig), ctypes.POINTER(Seqs), _f32p, _f32p,
                                               _f32p, _u8p, ctypes.POINTER(RcOut)]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(_lib, _name)
    _fn.restype, _fn.argtypes = _res, _args


# The CUDA library (vppo_cuda.cu, built by setup.py when nvcc was found): the same functions
# as vppo_cuda_<name> on device pointers, with the stream (void *) as one more argument.
# Used by vppo.torch for CUDA tensors; None when not built or not loadable (cuda_error says why).
_CUDA_FUNCS = ("vppo_logprobs", "vppo_logprobs_backward", "vppo_dependency_sampled", "vppo_policy_loss",
               "vppo_prepare", "vppo_step", "vppo_rollout_correction")
cuda_lib, cuda_error = None, "not built (nvcc not found, or VPPO_NO_CUDA set, when the package was installed)"
_cuda_path = os.environ.get("VPPO_CUDA_LIB") or _find_built("_libvppo_cuda")
if _cuda_path:
    try:
        cuda_lib = ctypes.CDLL(_cuda_path)
        for _name in _CUDA_FUNCS:
            _res, _args = _SIGNATURES[_name]
            _fn = getattr(cuda_lib, _name.replace("vppo_", "vppo_cuda_", 1))
            _fn.restype, _fn.argtypes = _res, list(_args) + [ctypes.c_void_p]
        cuda_lib.vppo_cuda_error_string.restype = ctypes.c_char_p
    except (OSError, AttributeError) as _e:
        cuda_lib, cuda_error = None, "%s could not be loaded: %s" % (_cuda_path, _e)


def _check_layouts():
    """Every Structure's size and field offsets against the compiler's (vppo_shared.c)."""
    problems = []
    for cls, cname in _C_NAMES.items():
        want = _lib.vppo_shared_sizeof(cname.encode())
        if want != ctypes.sizeof(cls):
            problems.append("sizeof(%s): C %d, ctypes %d" % (cname, want, ctypes.sizeof(cls)))
        for field, _ in cls._fields_:
            want = _lib.vppo_shared_offsetof(cname.encode(), field.encode())
            have = getattr(cls, field).offset
            if want != have:
                problems.append("offsetof(%s, %s): C %d, ctypes %d" % (cname, field, want, have))
    if problems:
        raise ImportError("vppo.py: the ctypes structures do not match vppo.h as compiled:\n  " +
                          "\n  ".join(problems))


_check_layouts()

# ------------------------------------------------------------------ helpers


def status_string(status):
    return _lib.vppo_status_string(int(status)).decode()


def _call(name, *args):
    status = getattr(_lib, name)(*args)
    if status != OK:
        raise VppoError(name, status)


def _call_cuda(name, *args):
    """vppo_cuda_<name>(*args, stream); VppoError with CUDA's message on VPPO_ERR_CUDA."""
    cname = name.replace("vppo_", "vppo_cuda_", 1)
    status = getattr(cuda_lib, cname)(*args)
    if status != OK:
        err = VppoError(cname, status)
        if status == -8:
            err.args = ("%s: %s" % (err.args[0], cuda_lib.vppo_cuda_error_string().decode()),)
        raise err


def _ptr(a, ctype):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctype))


def _numpy(a):
    """a as a numpy array: torch tensors (CPU) by view, bfloat16 as its exact float32 values."""
    if type(a).__module__.startswith("torch"):
        if a.device.type != "cpu":
            raise TypeError("vppo: a %s tensor in the numpy API; use vppo.torch (CUDA tensors need the CUDA build)"
                            % a.device.type)
        a = a.detach()
        if str(a.dtype) == "torch.bfloat16":
            a = a.float()                                   # exact
        return a.contiguous().numpy()
    return np.asarray(a)


def _exact(a, dtype, what):
    """a converted to dtype, refusing any conversion that changes a value."""
    if a.dtype == dtype:
        return a
    b = a.astype(dtype)
    with np.errstate(all="ignore"):
        back = b.astype(a.dtype)
    if not np.array_equal(back, a, equal_nan=a.dtype.kind in "fc"):
        raise ValueError("vppo: %s (%s) is not exactly %s; cast it yourself if the rounding is intended"
                         % (what, a.dtype, np.dtype(dtype).name))
    return b


def _flat(a, dtype, what="an input"):
    """a as a flat contiguous array of dtype (None stays None): float32 and int64 exactly,
    int32 (token ids) when every value fits; see the module's notes on conversions."""
    if a is None:
        return None
    a = _numpy(a)
    if np.dtype(dtype).kind in "iu" and a.dtype.kind not in "iub":
        raise TypeError("vppo: %s must be integers, not %s" % (what, a.dtype))
    if a.dtype == bool:
        a = a.astype(np.uint8)
    return np.ascontiguousarray(_exact(a, dtype, what)).reshape(-1)


def _mask(mask):
    """A mask of any dtype as flat uint8 0/1 (nonzero = 1), or None."""
    return None if mask is None else np.ascontiguousarray(_numpy(mask) != 0, dtype=np.uint8).reshape(-1)


class _SeqsArg:
    """A vppo_seqs that keeps its arrays alive; checks that they cover offsets[-1]."""

    def __init__(self, offsets, mask, n_needed=None):
        self.offsets = _flat(offsets, np.int64, "offsets")
        if self.offsets.size < 1:
            raise ValueError("offsets needs at least one entry (B+1 for B sequences)")
        self.mask = _mask(mask)
        self.end = int(self.offsets[-1])
        for arr, what in ((self.mask, "mask"),) + tuple(n_needed or ()):
            if arr is not None and arr.size < self.end:
                raise ValueError("%s has %d elements, the sequences need %d (offsets[-1])" % (what, arr.size, self.end))
        self.c = Seqs(self.offsets.size - 1, _ptr(self.offsets, ctypes.c_int64), _ptr(self.mask, ctypes.c_uint8))

    @property
    def ref(self):
        return ctypes.byref(self.c)


def offsets_uniform(n_seqs, length):
    """offsets[b] = b*length, b = 0..n_seqs: the layout of a padded [n_seqs, length] batch."""
    out = np.empty(n_seqs + 1, dtype=np.int64)
    _call("vppo_offsets_uniform", _ptr(out, ctypes.c_int64), n_seqs, length)
    return out


def offsets_from_lengths(lengths, start=0):
    """offsets of consecutive sequences of the given lengths (a packed batch)."""
    return np.concatenate([[start], start + np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def config_default():
    """vppo_config_default(): the released 7B recipe. Fields are writable: cfg.use_tas = 0,
    cfg.tas.mode = vppo.TAS_LINEAR, cfg.loss.entropy_coef = 0.0, ..."""
    return _lib.vppo_config_default()


def _struct_dict(s):
    return {name: getattr(s, name) for name, _ in s._fields_}


# ------------------------------------------------------------------ §4 advantages


def group_advantages(rewards, group_offsets, kind=ADV_GRPO, eps=1e-6, mask=None):
    """Per-response advantages; group g = responses [group_offsets[g], group_offsets[g+1])."""
    rewards = _flat(rewards, np.float32, "rewards")
    groups = _SeqsArg(group_offsets, mask, [(rewards, "rewards")])
    adv = np.zeros(rewards.size, dtype=np.float32)
    _call("vppo_group_advantages", groups.ref, _ptr(rewards, ctypes.c_float), kind, eps, _ptr(adv, ctypes.c_float))
    return adv


# ------------------------------------------------------------------ §2 perception


def dependency_sampled(offsets, mask, logp, logp_aug, est=EST_K3):
    shape = np.shape(logp)
    logp, logp_aug = _flat(logp, np.float32, "logp"), _flat(logp_aug, np.float32, "logp_aug")
    s = _SeqsArg(offsets, mask, [(logp, "logp"), (logp_aug, "logp_aug")])
    dep = np.zeros(logp.size, dtype=np.float32)
    _call("vppo_dependency_sampled", s.ref, _ptr(logp, ctypes.c_float), _ptr(logp_aug, ctypes.c_float), est,
          _ptr(dep, ctypes.c_float))
    return dep.reshape(shape)


_DTYPES = {np.dtype(np.float32): F32, np.dtype(np.float16): F16, np.dtype(np.uint16): BF16}


def _logits(x, temperature):
    """A 2-D array as a vppo_logits: float32 -> F32, float16 -> F16, uint16 -> BF16 bits.
    Rows may be strided (a view of a wider array); elements are copied if not contiguous."""
    if type(x).__module__.startswith("torch"):
        if x.device.type != "cpu":
            raise TypeError("vppo: logits on %s in the numpy API; use vppo.torch" % x.device.type)
        x = x.detach()
        x = x.view(dtype=__import__("torch").int16).numpy().view(np.uint16) if str(x.dtype) == "torch.bfloat16" \
            else x.numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError("logits must be 2-D [n_rows, vocab], not %r" % (x.shape,))
    if x.dtype not in _DTYPES:
        raise ValueError("logits dtype %s: use float32, float16, or uint16 holding bf16 bits" % x.dtype)
    if x.strides[1] != x.itemsize or x.strides[0] % x.itemsize or x.strides[0] < x.shape[1] * x.itemsize:
        x = np.ascontiguousarray(x)
    stride = x.strides[0] // x.itemsize if x.shape[0] > 1 else x.shape[1]
    c = Logits(x.ctypes.data, _DTYPES[x.dtype], x.shape[0], x.shape[1], stride, temperature)
    return c, x


def dependency_logits(orig, aug, div=DIV_KL, temperature=1.0, temperature_aug=None):
    """Paper Eq. 3 per row: KL(softmax(orig/T) || softmax(aug/T')) (or KL_REVERSE, JS)."""
    p, keep_p = _logits(orig, temperature)
    q, keep_q = _logits(aug, temperature if temperature_aug is None else temperature_aug)
    dep = np.zeros(p.n_rows, dtype=np.float32)
    _call("vppo_dependency_logits", ctypes.byref(p), ctypes.byref(q), div, _ptr(dep, ctypes.c_float))
    del keep_p, keep_q
    return dep


def logprobs(logits, ids=None, temperature=1.0):
    """(logp or None, lse, entropy) per row; logp needs the sampled token ids."""
    x, keep = _logits(logits, temperature)
    ids = None if ids is None else _flat(ids, np.int32, "ids")
    if ids is not None and ids.size != x.n_rows:
        raise ValueError("ids has %d entries for %d rows" % (ids.size, x.n_rows))
    logp = None if ids is None else np.zeros(x.n_rows, dtype=np.float32)
    lse, ent = np.zeros(x.n_rows, dtype=np.float32), np.zeros(x.n_rows, dtype=np.float32)
    _call("vppo_logprobs", ctypes.byref(x), _ptr(ids, ctypes.c_int32), _ptr(logp, ctypes.c_float),
          _ptr(lse, ctypes.c_float), _ptr(ent, ctypes.c_float))
    del keep
    return logp, lse, ent


def logprobs_backward(logits, ids, dlogp=None, dentropy=None, temperature=1.0, out_dtype=F32):
    """dL/dlogits for L = sum dlogp*logp + dentropy*entropy: float32 [n, V], or uint16 bf16 bits."""
    x, keep = _logits(logits, temperature)
    ids = _flat(ids, np.int32, "ids")
    dlogp, dentropy = _flat(dlogp, np.float32, "dlogp"), _flat(dentropy, np.float32, "dentropy")
    grad = np.zeros((x.n_rows, x.vocab), dtype=np.float32 if out_dtype == F32 else np.uint16)
    g = GradOut(grad.ctypes.data, out_dtype, x.vocab)
    _call("vppo_logprobs_backward", ctypes.byref(x), _ptr(ids, ctypes.c_int32), None, None,
          _ptr(dlogp, ctypes.c_float), _ptr(dentropy, ctypes.c_float), ctypes.byref(g))
    del keep
    return grad


# ------------------------------------------------------------------ §5-§8 pipeline


class _PreparedArg:
    def __init__(self, n_tokens, n_seqs):
        self.dep = np.zeros(n_tokens, dtype=np.float32)
        self.adv = np.zeros(n_tokens, dtype=np.float32)
        self.select = np.zeros(n_tokens, dtype=np.uint8)
        self.traj_dep = np.zeros(n_seqs, dtype=np.float32)
        self.scale = np.zeros(n_seqs, dtype=np.float32)
        self.count = np.zeros(n_seqs, dtype=np.int64)
        self.c = Prepared(_ptr(self.dep, ctypes.c_float), _ptr(self.traj_dep, ctypes.c_float),
                          _ptr(self.count, ctypes.c_int64), _ptr(self.scale, ctypes.c_float),
                          _ptr(self.adv, ctypes.c_float), _ptr(self.select, ctypes.c_uint8))

    def result(self, shape):
        return {"dep": self.dep.reshape(shape), "adv": self.adv.reshape(shape),
                "select": self.select.reshape(shape), "traj_dep": self.traj_dep, "scale": self.scale,
                "count": self.count, "stats": _struct_dict(self.c.stats), "topk": _struct_dict(self.c.topk)}


def tas_stats(traj_dep, count=None):
    """vppo_tas_stats_compute: {min, max, n} over sequences with count > 0 (all if None)."""
    traj_dep = _flat(traj_dep, np.float32, "traj_dep")
    count = _flat(count, np.int64, "count")
    st = TasStats()
    _call("vppo_tas_stats_compute", _ptr(traj_dep, ctypes.c_float), _ptr(count, ctypes.c_int64), traj_dep.size,
          ctypes.byref(st))
    return st


def prepare(cfg, offsets, mask, logp_old, logp_aug, adv_seq, dep_in=None, global_stats=None):
    """Everything before the loss (dependency, TAS, shaped advantages, TGF): a dict of the
    vppo_prepared arrays. global_stats: a TasStats (e.g. merged over ranks) or None."""
    main = dep_in if dep_in is not None else logp_old
    logp_old, logp_aug = _flat(logp_old, np.float32, "logp_old"), _flat(logp_aug, np.float32, "logp_aug")
    dep_in, adv_seq = _flat(dep_in, np.float32, "dep_in"), _flat(adv_seq, np.float32, "adv_seq")
    s = _SeqsArg(offsets, mask, [(logp_old, "logp_old"), (logp_aug, "logp_aug"), (dep_in, "dep_in")])
    if adv_seq.size < s.c.n_seqs:
        raise ValueError("adv_seq has %d entries for %d sequences" % (adv_seq.size, s.c.n_seqs))
    shape = np.shape(main) if main is not None else (s.end,)
    p = _PreparedArg(int(np.prod(shape)), s.c.n_seqs)
    _call("vppo_prepare", ctypes.byref(cfg), s.ref, _ptr(logp_old, ctypes.c_float), _ptr(logp_aug, ctypes.c_float),
          _ptr(dep_in, ctypes.c_float), _ptr(adv_seq, ctypes.c_float),
          None if global_stats is None else ctypes.byref(global_stats), ctypes.byref(p.c))
    return p.result(shape)


def step(cfg, offsets, mask, logp, logp_old, logp_aug, adv_seq, logp_ref=None):
    """One VPPO step: (loss_out dict, dlogp shaped like logp, prepared dict)."""
    shape = np.shape(logp)
    logp, logp_old = _flat(logp, np.float32, "logp"), _flat(logp_old, np.float32, "logp_old")
    logp_aug, logp_ref = _flat(logp_aug, np.float32, "logp_aug"), _flat(logp_ref, np.float32, "logp_ref")
    adv_seq = _flat(adv_seq, np.float32, "adv_seq")
    s = _SeqsArg(offsets, mask, [(logp, "logp"), (logp_old, "logp_old"), (logp_aug, "logp_aug"),
                                 (logp_ref, "logp_ref")])
    if adv_seq.size < s.c.n_seqs:
        raise ValueError("adv_seq has %d entries for %d sequences" % (adv_seq.size, s.c.n_seqs))
    p = _PreparedArg(logp.size, s.c.n_seqs)
    dlogp = np.zeros(logp.size, dtype=np.float32)
    out = LossOut()
    _call("vppo_step", ctypes.byref(cfg), s.ref, _ptr(logp, ctypes.c_float), _ptr(logp_old, ctypes.c_float),
          _ptr(logp_aug, ctypes.c_float), _ptr(logp_ref, ctypes.c_float), _ptr(adv_seq, ctypes.c_float),
          ctypes.byref(p.c), _ptr(dlogp, ctypes.c_float), ctypes.byref(out))
    return _struct_dict(out), dlogp.reshape(shape), p.result(shape)


def policy_loss(loss_cfg, offsets, mask, logp, logp_old, adv, select=None, weight=None, logp_ref=None):
    """vppo_policy_loss on per-token advantages: (loss_out dict, dlogp shaped like logp)."""
    shape = np.shape(logp)
    logp, logp_old = _flat(logp, np.float32, "logp"), _flat(logp_old, np.float32, "logp_old")
    adv, weight = _flat(adv, np.float32, "adv"), _flat(weight, np.float32, "weight")
    logp_ref, select = _flat(logp_ref, np.float32, "logp_ref"), _mask(select)
    s = _SeqsArg(offsets, mask, [(logp, "logp"), (logp_old, "logp_old"), (adv, "adv"), (select, "select"),
                                 (weight, "weight"), (logp_ref, "logp_ref")])
    dlogp = np.zeros(logp.size, dtype=np.float32)
    out = LossOut()
    _call("vppo_policy_loss", ctypes.byref(loss_cfg), s.ref, _ptr(logp, ctypes.c_float),
          _ptr(logp_old, ctypes.c_float), _ptr(logp_ref, ctypes.c_float), _ptr(adv, ctypes.c_float),
          _ptr(select, ctypes.c_uint8), _ptr(weight, ctypes.c_float), _ptr(dlogp, ctypes.c_float),
          ctypes.byref(out))
    return _struct_dict(out), dlogp.reshape(shape)


# ------------------------------------------------------------------ rollout correction


def rc_config_default():
    """vppo_rc_config_default(): token-level TIS at 2.0, no rejection. Fields are writable:
    cfg.is_mode = vppo.RC_IS_MASK, cfg.is_level = vppo.RC_SEQ_MEAN, cfg.rs_kind = vppo.RC_RS_K3, ..."""
    return _lib.vppo_rc_config_default()


def rollout_correction(cfg, offsets, mask, logp, logp_rollout):
    """vppo_rollout_correction: (weight, keep, metrics dict). weight (float32) and keep (uint8
    0/1) take the shape of logp; weight feeds policy_loss's weight, keep its mask (verl's
    rollout_is_weights and modified response_mask). logp: the trainer's log-probs of the
    sampled tokens (verl's old_log_prob), logp_rollout: the inference engine's."""
    shape = np.shape(logp)
    logp, logp_rollout = _flat(logp, np.float32, "logp"), _flat(logp_rollout, np.float32, "logp_rollout")
    s = _SeqsArg(offsets, mask, [(logp, "logp"), (logp_rollout, "logp_rollout")])
    weight = np.zeros(logp.size, dtype=np.float32)
    keep = np.zeros(logp.size, dtype=np.uint8)
    out = RcOut()
    _call("vppo_rollout_correction", ctypes.byref(cfg), s.ref, _ptr(logp, ctypes.c_float),
          _ptr(logp_rollout, ctypes.c_float), _ptr(weight, ctypes.c_float), _ptr(keep, ctypes.c_uint8),
          ctypes.byref(out))
    return weight.reshape(shape), keep.reshape(shape), _struct_dict(out)
