/* examples/python/vppo_shared.c - vppo.h as a shared library, for vppo.py (ctypes).

   make shared      builds build/libvppo.so:
       cc -std=c99 -O2 -fPIC -shared -I. -o build/libvppo.so examples/python/vppo_shared.c -lm
   pip install ./examples/python   builds it into the package (setup.py)
   Every vppo_ function of vppo.h is exported (default visibility). Besides them this
   file exports the layout of every public struct, so that vppo.py can check, when it is
   imported, that its ctypes Structures match what the C compiler laid out:

       int64_t vppo_shared_sizeof(const char *struct_name);
       int64_t vppo_shared_offsetof(const char *struct_name, const char *field_name);

   both -1 for a name they do not know. */
#define VPPO_IMPLEMENTATION
#include "vppo.h"   /* -I<repository root>, or the copy setup.py compiles against */

#include <stddef.h>
#include <string.h>

VPPODEF int64_t vppo_shared_sizeof(const char *struct_name);
VPPODEF int64_t vppo_shared_offsetof(const char *struct_name, const char *field_name);

/* One row per (struct, field); field "" gives the struct's size. */
typedef struct layout_row { const char *type, *field; size_t value; } layout_row;

#define SIZE(T) { #T, "", sizeof(T) }
#define FIELD(T, f) { #T, #f, offsetof(T, f) }

static const layout_row layout[] = {
    SIZE(vppo_seqs), FIELD(vppo_seqs, n_seqs), FIELD(vppo_seqs, offsets), FIELD(vppo_seqs, mask),
    SIZE(vppo_logits), FIELD(vppo_logits, data), FIELD(vppo_logits, dtype), FIELD(vppo_logits, n_rows),
    FIELD(vppo_logits, vocab), FIELD(vppo_logits, row_stride), FIELD(vppo_logits, temperature),
    SIZE(vppo_grad_out), FIELD(vppo_grad_out, data), FIELD(vppo_grad_out, dtype), FIELD(vppo_grad_out, row_stride),
    SIZE(vppo_image), FIELD(vppo_image, pixels), FIELD(vppo_image, width), FIELD(vppo_image, height),
    FIELD(vppo_image, channels), FIELD(vppo_image, row_stride),
    SIZE(vppo_tas_stats), FIELD(vppo_tas_stats, min), FIELD(vppo_tas_stats, max), FIELD(vppo_tas_stats, n),
    SIZE(vppo_tas_config), FIELD(vppo_tas_config, mode), FIELD(vppo_tas_config, beta_min),
    FIELD(vppo_tas_config, beta_max),
    SIZE(vppo_topk_info), FIELD(vppo_topk_info, n_valid), FIELD(vppo_topk_info, n_selected),
    FIELD(vppo_topk_info, threshold_mean), FIELD(vppo_topk_info, mean_selected),
    FIELD(vppo_topk_info, mean_rejected),
    SIZE(vppo_loss_config), FIELD(vppo_loss_config, clip_low), FIELD(vppo_loss_config, clip_high),
    FIELD(vppo_loss_config, clip_dual), FIELD(vppo_loss_config, pg_kind), FIELD(vppo_loss_config, ratio_level),
    FIELD(vppo_loss_config, agg), FIELD(vppo_loss_config, agg_norm), FIELD(vppo_loss_config, kl_kind),
    FIELD(vppo_loss_config, kl_coef), FIELD(vppo_loss_config, entropy_coef), FIELD(vppo_loss_config, denom),
    SIZE(vppo_loss_out), FIELD(vppo_loss_out, loss), FIELD(vppo_loss_out, pg_loss), FIELD(vppo_loss_out, kl_loss),
    FIELD(vppo_loss_out, entropy_loss), FIELD(vppo_loss_out, clipfrac), FIELD(vppo_loss_out, clipfrac_dual),
    FIELD(vppo_loss_out, ppo_kl), FIELD(vppo_loss_out, n_valid), FIELD(vppo_loss_out, n_selected),
    SIZE(vppo_config), FIELD(vppo_config, estimator), FIELD(vppo_config, use_tas), FIELD(vppo_config, tas),
    FIELD(vppo_config, use_tgf), FIELD(vppo_config, topk_ratio), FIELD(vppo_config, loss),
    SIZE(vppo_prepared), FIELD(vppo_prepared, dep), FIELD(vppo_prepared, traj_dep), FIELD(vppo_prepared, count),
    FIELD(vppo_prepared, scale), FIELD(vppo_prepared, adv), FIELD(vppo_prepared, select),
    FIELD(vppo_prepared, stats), FIELD(vppo_prepared, topk),
    SIZE(vppo_rc_config), FIELD(vppo_rc_config, is_mode), FIELD(vppo_rc_config, is_level),
    FIELD(vppo_rc_config, is_upper), FIELD(vppo_rc_config, is_lower), FIELD(vppo_rc_config, is_batch_normalize),
    FIELD(vppo_rc_config, rs_kind), FIELD(vppo_rc_config, rs_level), FIELD(vppo_rc_config, rs_upper),
    FIELD(vppo_rc_config, rs_lower),
    SIZE(vppo_rc_out), FIELD(vppo_rc_out, n_valid), FIELD(vppo_rc_out, n_seqs_valid), FIELD(vppo_rc_out, n_kept),
    FIELD(vppo_rc_out, is_mean), FIELD(vppo_rc_out, is_std), FIELD(vppo_rc_out, is_min), FIELD(vppo_rc_out, is_max),
    FIELD(vppo_rc_out, is_ess), FIELD(vppo_rc_out, is_frac_high), FIELD(vppo_rc_out, is_frac_low),
    FIELD(vppo_rc_out, is_norm), FIELD(vppo_rc_out, rs_mean), FIELD(vppo_rc_out, rs_min), FIELD(vppo_rc_out, rs_max),
    FIELD(vppo_rc_out, rs_frac_token), FIELD(vppo_rc_out, rs_frac_seq), FIELD(vppo_rc_out, kl),
    FIELD(vppo_rc_out, k3_kl), FIELD(vppo_rc_out, chi2_token), FIELD(vppo_rc_out, chi2_seq),
    FIELD(vppo_rc_out, log_ppl_diff),
};

static int64_t find(const char *type, const char *field)
{
    size_t i;
    if (!type || !field) return -1;
    for (i = 0; i < sizeof layout / sizeof layout[0]; ++i)
        if (strcmp(layout[i].type, type) == 0 && strcmp(layout[i].field, field) == 0)
            return (int64_t)layout[i].value;
    return -1;
}

VPPODEF int64_t vppo_shared_sizeof(const char *struct_name) { return find(struct_name, ""); }
VPPODEF int64_t vppo_shared_offsetof(const char *struct_name, const char *field_name)
{
    if (field_name && field_name[0] == '\0') return -1;
    return find(struct_name, field_name);
}
