"""vppo_ctypes.py - the layouts of vppo.h's structs for ctypes, shared by bench/peers.py and
bench/bench_cuda_torch.py (LP64: x86-64 and aarch64 Linux; enums are C ints).

The expected sizes were computed by hand from the C rules and confirmed with gcc's sizeof
on vppo.h; check_sizes() asserts that ctypes agrees.
"""
import ctypes


class VppoLogits(ctypes.Structure):
    # { const void *data; vppo_dtype dtype; int64_t n_rows, vocab, row_stride; float temperature; }
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("n_rows", ctypes.c_int64), ("vocab", ctypes.c_int64),
                ("row_stride", ctypes.c_int64), ("temperature", ctypes.c_float)]


class VppoGradOut(ctypes.Structure):
    # { void *data; vppo_dtype dtype; int64_t row_stride; }
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("row_stride", ctypes.c_int64)]


class VppoSeqs(ctypes.Structure):
    # { int64_t n_seqs; const int64_t *offsets; const uint8_t *mask; }
    _fields_ = [("n_seqs", ctypes.c_int64), ("offsets", ctypes.c_void_p), ("mask", ctypes.c_void_p)]


class VppoTasConfig(ctypes.Structure):
    # { vppo_tas_mode mode; float beta_min, beta_max; }
    _fields_ = [("mode", ctypes.c_int), ("beta_min", ctypes.c_float), ("beta_max", ctypes.c_float)]


class VppoLossConfig(ctypes.Structure):
    # { float clip_low, clip_high, clip_dual; vppo_pg_kind pg_kind; vppo_ratio_level ratio_level;
    #   vppo_agg agg; double agg_norm; vppo_kl_kind kl_kind; float kl_coef; float entropy_coef;
    #   double denom; }
    _fields_ = [("clip_low", ctypes.c_float), ("clip_high", ctypes.c_float), ("clip_dual", ctypes.c_float),
                ("pg_kind", ctypes.c_int), ("ratio_level", ctypes.c_int), ("agg", ctypes.c_int),
                ("agg_norm", ctypes.c_double), ("kl_kind", ctypes.c_int), ("kl_coef", ctypes.c_float),
                ("entropy_coef", ctypes.c_float), ("denom", ctypes.c_double)]


class VppoConfig(ctypes.Structure):
    # { vppo_estimator estimator; int use_tas; vppo_tas_config tas; int use_tgf; double topk_ratio;
    #   vppo_loss_config loss; }
    _fields_ = [("estimator", ctypes.c_int), ("use_tas", ctypes.c_int), ("tas", VppoTasConfig),
                ("use_tgf", ctypes.c_int), ("topk_ratio", ctypes.c_double), ("loss", VppoLossConfig)]


class VppoTasStats(ctypes.Structure):
    _fields_ = [("min", ctypes.c_double), ("max", ctypes.c_double), ("n", ctypes.c_int64)]


class VppoTopkInfo(ctypes.Structure):
    _fields_ = [("n_valid", ctypes.c_int64), ("n_selected", ctypes.c_int64),
                ("threshold_mean", ctypes.c_double), ("mean_selected", ctypes.c_double),
                ("mean_rejected", ctypes.c_double)]


class VppoPrepared(ctypes.Structure):
    # { float *dep, *traj_dep; int64_t *count; float *scale, *adv; uint8_t *select;
    #   vppo_tas_stats stats; vppo_topk_info topk; }
    _fields_ = [("dep", ctypes.c_void_p), ("traj_dep", ctypes.c_void_p), ("count", ctypes.c_void_p),
                ("scale", ctypes.c_void_p), ("adv", ctypes.c_void_p), ("select", ctypes.c_void_p),
                ("stats", VppoTasStats), ("topk", VppoTopkInfo)]


class VppoLossOut(ctypes.Structure):
    _fields_ = [("loss", ctypes.c_double), ("pg_loss", ctypes.c_double), ("kl_loss", ctypes.c_double),
                ("entropy_loss", ctypes.c_double), ("clipfrac", ctypes.c_double),
                ("clipfrac_dual", ctypes.c_double), ("ppo_kl", ctypes.c_double),
                ("n_valid", ctypes.c_int64), ("n_selected", ctypes.c_int64)]


EXPECTED_SIZES = [(VppoLogits, 48), (VppoGradOut, 24), (VppoSeqs, 24), (VppoTasConfig, 12),
                  (VppoLossConfig, 56), (VppoConfig, 88), (VppoTasStats, 24), (VppoTopkInfo, 40),
                  (VppoPrepared, 112), (VppoLossOut, 72)]

VPPO_F32, VPPO_BF16 = 0, 1
VPPO_DIV_KL = 0
STATUS_NAMES = {0: "VPPO_OK", -1: "VPPO_ERR_NULL", -2: "VPPO_ERR_SIZE", -3: "VPPO_ERR_PARAM",
                -4: "VPPO_ERR_INDEX", -5: "VPPO_ERR_NONFINITE", -6: "VPPO_ERR_WORKSPACE",
                -7: "VPPO_ERR_UNSUPPORTED", -8: "VPPO_ERR_CUDA", -9: "VPPO_ERR_ALLOC"}


def check_sizes(who):
    bad = ["%s: ctypes %d, C %d" % (cls.__name__, ctypes.sizeof(cls), size)
           for cls, size in EXPECTED_SIZES if ctypes.sizeof(cls) != size]
    if bad:
        raise SystemExit("%s: ctypes layouts differ from vppo.h: %s" % (who, "; ".join(bad)))
