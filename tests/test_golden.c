/* tests/test_golden.c - vppo.h against golden vectors from trusted implementations.

   tests/data/golden_*.txt hold inputs and the outputs that verl's core_algos, a torch
   transcription of the VPPO release's update_policy, and torch.nn.functional computed for
   them (written by `make golden`, tests/crosscheck/crosscheck.py; format and provenance in
   tests/data/README.md). Each test below reads one file, replays every case through the
   library and compares: masks exactly, values within the docs/spec.md §12 bounds. A missing
   or malformed file is a failure, never a skip. The suite runs from the repository root;
   VPPO_GOLDEN_DIR overrides the directory. */
#include "test.h"

#define GV_MAX_ITEMS 40

typedef enum gv_type { GV_F32, GV_F64, GV_I64, GV_I32, GV_U8, GV_U16 } gv_type;
typedef struct gv_item { char key[32]; gv_type type; int64_t count; double *v; } gv_item;
typedef struct gv_case { char name[64], kind[32]; int n_items; gv_item items[GV_MAX_ITEMS]; } gv_case;
typedef struct gv_file { int n_cases; gv_case *cases; } gv_file;

/* ------------------------------------------------------------- reading */

/* The next whitespace-separated token of *p (comments skipped) into tok; 0 at the end. */
static int gv_token(const char **p, char *tok, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') ++s;
        if (*s != '#') break;
        while (*s && *s != '\n') ++s;
    }
    if (!*s) { *p = s; return 0; }
    while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '#') {
        if (n + 1 < cap) tok[n++] = *s;
        ++s;
    }
    tok[n] = '\0';
    *p = s;
    return 1;
}

static int gv_type_of(const char *tok, gv_type *t)
{
    static const char *const names[] = { "f32", "f64", "i64", "i32", "u8", "u16" };
    int i;
    for (i = 0; i < 6; ++i) if (strcmp(tok, names[i]) == 0) { *t = (gv_type)i; return 1; }
    return 0;
}

static void gv_free(gv_file *f)
{
    int c, i;
    for (c = 0; c < f->n_cases; ++c)
        for (i = 0; i < f->cases[c].n_items; ++i) free(f->cases[c].items[i].v);
    free(f->cases);
    f->cases = NULL;
    f->n_cases = 0;
}

static char *gv_slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *text = NULL;
    long size;
    if (!fp) return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        text = (char *)malloc((size_t)size + 1);
        if (text && fread(text, 1, (size_t)size, fp) != (size_t)size) { free(text); text = NULL; }
        if (text) text[size] = '\0';
    }
    fclose(fp);
    return text;
}

/* Reads tests/data/<name> (or $VPPO_GOLDEN_DIR/<name>); on any problem records a failure
   naming the file and the reason, and returns 0. */
static int gv_load(const char *name, gv_file *f)
{
    char path[1024], tok[128];
    const char *dir = getenv("VPPO_GOLDEN_DIR"), *p;
    char *text;
    int ok = 0, cap = 0;
    f->n_cases = 0;
    f->cases = NULL;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/data", name);
    text = gv_slurp(path);
    if (!text) {
        test_fail(__FILE__, __LINE__, "%s: cannot read the golden vectors (run the suite from the repository "
                  "root, or set VPPO_GOLDEN_DIR)", path);
        return 0;
    }
    p = text;
    if (!gv_token(&p, tok, sizeof tok) || strcmp(tok, "vppo-golden") != 0 || !gv_token(&p, tok, sizeof tok) ||
        strcmp(tok, "1") != 0) {
        test_fail(__FILE__, __LINE__, "%s: not a 'vppo-golden 1' file", path);
        goto done;
    }
    while (gv_token(&p, tok, sizeof tok)) {
        gv_case *c;
        if (strcmp(tok, "case") != 0) {
            test_fail(__FILE__, __LINE__, "%s: expected 'case', got '%s'", path, tok);
            goto done;
        }
        if (f->n_cases == cap) {
            gv_case *grown;
            cap = cap ? 2 * cap : 16;
            grown = (gv_case *)realloc(f->cases, (size_t)cap * sizeof *grown);
            if (!grown) { test_fail(__FILE__, __LINE__, "%s: out of memory", path); goto done; }
            f->cases = grown;
        }
        c = &f->cases[f->n_cases++];
        c->n_items = 0;
        if (!gv_token(&p, c->name, sizeof c->name) || !gv_token(&p, c->kind, sizeof c->kind)) {
            test_fail(__FILE__, __LINE__, "%s: truncated case header", path);
            goto done;
        }
        for (;;) {
            gv_item *it;
            int64_t i;
            if (!gv_token(&p, tok, sizeof tok)) {
                test_fail(__FILE__, __LINE__, "%s: case %s has no 'end'", path, c->name);
                goto done;
            }
            if (strcmp(tok, "end") == 0) break;
            if (c->n_items == GV_MAX_ITEMS) {
                test_fail(__FILE__, __LINE__, "%s: case %s has too many items", path, c->name);
                goto done;
            }
            it = &c->items[c->n_items];
            it->v = NULL;
            if (!gv_type_of(tok, &it->type) || !gv_token(&p, it->key, sizeof it->key) ||
                !gv_token(&p, tok, sizeof tok) || (it->count = strtoll(tok, NULL, 10)) < 0) {
                test_fail(__FILE__, __LINE__, "%s: case %s: bad item header near '%s'", path, c->name, tok);
                goto done;
            }
            ++c->n_items;
            it->v = (double *)malloc((size_t)(it->count > 0 ? it->count : 1) * sizeof(double));
            if (!it->v) { test_fail(__FILE__, __LINE__, "%s: out of memory", path); goto done; }
            for (i = 0; i < it->count; ++i) {
                char *end;
                if (!gv_token(&p, tok, sizeof tok)) {
                    test_fail(__FILE__, __LINE__, "%s: case %s: %s ends after %lld of %lld values", path,
                              c->name, it->key, (long long)i, (long long)it->count);
                    goto done;
                }
                it->v[i] = strtod(tok, &end);
                if (*end != '\0') {
                    test_fail(__FILE__, __LINE__, "%s: case %s: %s: '%s' is not a number", path, c->name,
                              it->key, tok);
                    goto done;
                }
            }
        }
    }
    ok = f->n_cases > 0;
    if (!ok) test_fail(__FILE__, __LINE__, "%s: no cases", path);
done:
    free(text);
    if (!ok) gv_free(f);
    return ok;
}

/* ------------------------------------------------------------- items */

static const gv_item *gv_find(const gv_case *c, const char *key)
{
    int i;
    for (i = 0; i < c->n_items; ++i) if (strcmp(c->items[i].key, key) == 0) return &c->items[i];
    return NULL;
}

/* A required item of the given type with `count` values (count < 0: any). */
static const gv_item *gv_need(const gv_case *c, const char *key, gv_type type, int64_t count)
{
    const gv_item *it = gv_find(c, key);
    if (!it || it->type != type || (count >= 0 && it->count != count)) {
        test_fail(__FILE__, __LINE__, "case %s: item %s missing, of another type, or not %lld values", c->name,
                  key, (long long)count);
        return NULL;
    }
    return it;
}

/* Copies of an item's values in the C types of the calls; NULL for an empty item. */
static float *gv_floats(const gv_item *it)
{
    float *x;
    int64_t i;
    if (!it || it->count == 0) return NULL;
    x = (float *)malloc((size_t)it->count * sizeof *x);
    for (i = 0; x && i < it->count; ++i) x[i] = (float)it->v[i];
    return x;
}

static int64_t *gv_i64s(const gv_item *it)
{
    int64_t *x, i;
    if (!it || it->count == 0) return NULL;
    x = (int64_t *)malloc((size_t)it->count * sizeof *x);
    for (i = 0; x && i < it->count; ++i) x[i] = (int64_t)it->v[i];
    return x;
}

static uint8_t *gv_u8s(const gv_item *it)
{
    uint8_t *x;
    int64_t i;
    if (!it || it->count == 0) return NULL;
    x = (uint8_t *)malloc((size_t)it->count);
    for (i = 0; x && i < it->count; ++i) x[i] = (uint8_t)it->v[i];
    return x;
}

static double gv_scalar(const gv_case *c, const char *key, gv_type type)
{
    const gv_item *it = gv_need(c, key, type, 1);
    return it ? it->v[0] : 0.0;
}

/* vppo_loss_config from the 11 values of a `cfg` item (docs/spec.md §7 field order). */
static vppo_loss_config gv_loss_config(const gv_item *it)
{
    vppo_loss_config lc = vppo_loss_config_default();
    if (!it) return lc;
    lc.clip_low = (float)it->v[0];
    lc.clip_high = (float)it->v[1];
    lc.clip_dual = (float)it->v[2];
    lc.pg_kind = (vppo_pg_kind)(int)it->v[3];
    lc.ratio_level = (vppo_ratio_level)(int)it->v[4];
    lc.agg = (vppo_agg)(int)it->v[5];
    lc.agg_norm = it->v[6];
    lc.kl_kind = (vppo_kl_kind)(int)it->v[7];
    lc.kl_coef = (float)it->v[8];
    lc.entropy_coef = (float)it->v[9];
    lc.denom = it->v[10];
    return lc;
}

/* Compares n library values with the expected item (if given and of n values). */
static void gv_compare(const gv_case *c, const char *key, const float *got, int64_t n, double abs_tol,
                       double rel_tol)
{
    const gv_item *it = gv_need(c, key, GV_F64, n);
    int64_t i, bad = 0;
    if (!it) return;
    for (i = 0; i < n; ++i) {
        ++test_checks;
        if (!test_near(it->v[i], got[i], abs_tol, rel_tol) && bad++ < 3)
            test_fail(__FILE__, __LINE__, "case %s: %s[%lld]: expected %.10g, got %.10g", c->name, key,
                      (long long)i, it->v[i], (double)got[i]);
    }
}

/* An optional expected batch scalar (the references define different subsets). */
static int gv_compare_scalar(const gv_case *c, const char *key, double got)
{
    const gv_item *it = gv_find(c, key);
    if (!it) return 0;
    if (it->type != GV_F64 || it->count != 1) {
        test_fail(__FILE__, __LINE__, "case %s: %s is not one f64", c->name, key);
        return 0;
    }
    ++test_checks;
    if (!test_near(it->v[0], got, TOL_SCALAR))
        test_fail(__FILE__, __LINE__, "case %s: %s: expected %.12g, got %.12g (diff %.3g)", c->name, key,
                  it->v[0], got, got - it->v[0]);
    return 1;
}

/* ------------------------------------------------------------- verl: advantages */

void golden_verl_group_advantages(void)
{
    gv_file f;
    int ci, cases = 0, seen[4] = { 0, 0, 0, 0 };
    if (!gv_load("golden_verl.txt", &f)) return;
    for (ci = 0; ci < f.n_cases; ++ci) {
        const gv_case *c = &f.cases[ci];
        const gv_item *rw, *gr;
        float *rewards, *adv;
        int64_t *groups;
        vppo_seqs s;
        int kind;
        if (strcmp(c->kind, "group_adv") != 0) continue;
        if (!(rw = gv_need(c, "rewards", GV_F32, -1)) || !(gr = gv_need(c, "groups", GV_I64, -1))) continue;
        kind = (int)gv_scalar(c, "kind", GV_I64);
        rewards = gv_floats(rw);
        groups = gv_i64s(gr);
        adv = floats_new(rw->count, -1.0f);
        s.n_seqs = gr->count - 1; s.offsets = groups; s.mask = NULL;
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, rewards, (vppo_adv_kind)kind,
                                                    (float)gv_scalar(c, "eps", GV_F32), adv));
        gv_compare(c, "exp_adv", adv, rw->count, TOL_TOKEN);
        if (kind >= 0 && kind < 4) seen[kind] = 1;
        ++cases;
        free(rewards); free(groups); free(adv);
    }
    CHECK(cases >= 4);
    CHECK(seen[0] && seen[1] && seen[2] && seen[3]);   /* GRPO, Dr.GRPO, RLOO, pass@k */
    gv_free(&f);
}

/* ------------------------------------------------------------- verl: policy losses */

void golden_verl_policy_losses(void)
{
    gv_file f;
    int ci, cases = 0;
    if (!gv_load("golden_verl.txt", &f)) return;
    for (ci = 0; ci < f.n_cases; ++ci) {
        const gv_case *c = &f.cases[ci];
        const gv_item *off, *lp;
        int64_t *offsets, n;
        uint8_t *mask, *select;
        float *logp, *logp_old, *logp_ref, *adv, *weight, *dlogp;
        vppo_loss_config lc;
        vppo_loss_out out;
        vppo_seqs s;
        if (strcmp(c->kind, "policy_loss") != 0) continue;
        if (!(off = gv_need(c, "offsets", GV_I64, -1)) || !(lp = gv_need(c, "logp", GV_F32, -1)) ||
            !gv_need(c, "cfg", GV_F64, 11) || !gv_need(c, "exp_loss", GV_F64, 1))
            continue;
        offsets = gv_i64s(off);
        n = offsets[off->count - 1];
        CHECK_EQ_INT(n, lp->count);
        mask = gv_u8s(gv_find(c, "mask"));
        select = gv_u8s(gv_find(c, "select"));
        logp = gv_floats(lp);
        logp_old = gv_floats(gv_need(c, "logp_old", GV_F32, n));
        logp_ref = gv_floats(gv_find(c, "logp_ref"));
        adv = gv_floats(gv_need(c, "adv", GV_F32, n));
        weight = gv_floats(gv_find(c, "weight"));
        dlogp = floats_new(n, -7.0f);
        lc = gv_loss_config(gv_find(c, "cfg"));
        s.n_seqs = off->count - 1; s.offsets = offsets; s.mask = mask;
        if (logp_old && adv) {
            CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc, &s, logp, logp_old, logp_ref, adv, select, weight,
                                                   dlogp, &out));
            gv_compare_scalar(c, "exp_loss", out.loss);
            gv_compare_scalar(c, "exp_pg_loss", out.pg_loss);
            gv_compare_scalar(c, "exp_kl_loss", out.kl_loss);
            gv_compare_scalar(c, "exp_ppo_kl", out.ppo_kl);
            gv_compare_scalar(c, "exp_clipfrac", out.clipfrac);
            gv_compare_scalar(c, "exp_clipfrac_dual", out.clipfrac_dual);
            gv_compare(c, "exp_dlogp", dlogp, n, TOL_TOKEN);
            ++cases;
        }
        free(offsets); free(mask); free(select); free(logp); free(logp_old); free(logp_ref); free(adv);
        free(weight); free(dlogp);
    }
    CHECK(cases >= 10);
    gv_free(&f);
}

/* ------------------------------------------------------------- the release's update_policy */

/* One stored mini-batch: for every rank, the TAS range over its responses (the release's
   pre-pass: dependency, per-response means, min/max), then per micro-batch one
   vppo_prepare with that range and one vppo_policy_loss with denom = the valid tokens of
   all ranks; a single micro-batch goes through vppo_step itself. */
static int golden_release_case(const gv_case *c)
{
    const gv_item *shape = gv_need(c, "shape", GV_I64, 2), *ranks = gv_need(c, "ranks", GV_I64, -1);
    const gv_item *vp = gv_need(c, "vppo", GV_F64, 5), *lp;
    int64_t B, L, N, b, r, total = 0, micro = (int64_t)gv_scalar(c, "micro", GV_I64);
    int64_t *offsets, *count;
    uint8_t *mask, *select, *sel_entropy;
    float *logp, *logp_old, *logp_aug, *logp_ref, *adv_seq, *entropy, *dep, *traj, *scale, *adv, *dlogp;
    double loss = 0, pg = 0, kl = 0, ent = 0, ratio_entropy;
    vppo_config cfg = vppo_config_default();
    vppo_prepared p;
    int multi;
    if (!shape || !ranks || !vp || micro < 1 || !gv_need(c, "cfg", GV_F64, 11)) return 0;
    B = (int64_t)shape->v[0]; L = (int64_t)shape->v[1]; N = B * L;
    if (!(lp = gv_need(c, "logp", GV_F32, N)) || !gv_need(c, "mask", GV_U8, N) ||
        !gv_need(c, "adv_seq", GV_F32, B) || (int64_t)ranks->v[ranks->count - 1] != B)
        return 0;
    cfg.use_tas = (int)vp->v[0]; cfg.tas.beta_min = (float)vp->v[1];
    cfg.use_tgf = (int)vp->v[2]; cfg.topk_ratio = vp->v[3];
    ratio_entropy = vp->v[4];
    cfg.loss = gv_loss_config(gv_find(c, "cfg"));
    offsets = (int64_t *)malloc((size_t)(B + 1) * sizeof *offsets);
    count = (int64_t *)malloc((size_t)B * sizeof *count);
    vppo_offsets_uniform(offsets, B, L);
    mask = gv_u8s(gv_find(c, "mask"));
    logp = gv_floats(lp);
    logp_old = gv_floats(gv_need(c, "logp_old", GV_F32, N));
    logp_aug = gv_floats(gv_need(c, "logp_aug", GV_F32, N));
    logp_ref = gv_floats(gv_find(c, "logp_ref"));
    adv_seq = gv_floats(gv_find(c, "adv_seq"));
    entropy = gv_floats(gv_find(c, "entropy"));
    dep = floats_new(N, -1.0f); adv = floats_new(N, -1.0f); dlogp = floats_new(N, -1.0f);
    traj = floats_new(B, -1.0f); scale = floats_new(B, -1.0f);
    select = (uint8_t *)calloc((size_t)N, 1);
    sel_entropy = (uint8_t *)calloc((size_t)N, 1);
    for (b = 0; b < N; ++b) total += mask[b] != 0;
    multi = ranks->count > 2 || micro < B;
    if (multi) cfg.loss.denom = (double)total;
    if (ratio_entropy > 0 && !entropy) test_fail(__FILE__, __LINE__, "case %s: entropy missing", c->name);
    p.dep = dep; p.traj_dep = traj; p.count = count; p.scale = scale; p.adv = adv; p.select = select;

    for (r = 0; r + 1 < ranks->count; ++r) {
        const int64_t r0 = (int64_t)ranks->v[r], r1 = (int64_t)ranks->v[r + 1];
        vppo_seqs rank_s, s;
        vppo_tas_stats range;
        int64_t m0;
        rank_s.n_seqs = r1 - r0; rank_s.offsets = offsets + r0; rank_s.mask = mask;
        CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&rank_s, logp_old, logp_aug, VPPO_EST_K3, dep));
        CHECK_STATUS(VPPO_OK, vppo_seq_mean(&rank_s, dep, traj + r0, count + r0));
        CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj + r0, count + r0, r1 - r0, &range));
        for (m0 = r0; m0 < r1; m0 += micro) {
            const int64_t m1 = m0 + micro < r1 ? m0 + micro : r1;
            vppo_loss_out out;
            vppo_prepared pm = p;
            int64_t t;
            s.n_seqs = m1 - m0; s.offsets = offsets + m0; s.mask = mask;
            pm.traj_dep = traj + m0; pm.count = count + m0; pm.scale = scale + m0;
            if (!multi && ratio_entropy <= 0) {
                CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &s, logp, logp_old, logp_aug, logp_ref, adv_seq + m0, &pm,
                                                dlogp, &out));
            } else {
                CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &s, logp_old, logp_aug, NULL, adv_seq + m0,
                                                   multi ? &range : NULL, &pm));
                if (ratio_entropy > 0 && entropy) {   /* the release's entropy top-k, OR'ed in */
                    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, entropy, ratio_entropy, sel_entropy, NULL));
                    for (t = offsets[m0]; t < offsets[m1]; ++t) select[t] = (uint8_t)(select[t] | sel_entropy[t]);
                }
                CHECK_STATUS(VPPO_OK, vppo_policy_loss(&cfg.loss, &s, logp, logp_old, logp_ref, adv, select, NULL,
                                                       dlogp, &out));
            }
            loss += out.loss; pg += out.pg_loss; kl += out.kl_loss; ent += out.entropy_loss;
        }
    }
    gv_compare(c, "exp_dep", dep, N, TOL_TOKEN);
    gv_compare(c, "exp_traj_dep", traj, B, TOL_TOKEN);
    gv_compare(c, "exp_scale", scale, B, TOL_TOKEN);
    gv_compare(c, "exp_adv", adv, N, TOL_TOKEN);
    gv_compare(c, "exp_dlogp", dlogp, N, TOL_TOKEN);
    {
        const gv_item *es = gv_need(c, "exp_select", GV_U8, N);
        int64_t t, bad = 0;
        for (t = 0; es && t < N; ++t) {
            ++test_checks;
            if ((select[t] != 0) != (es->v[t] != 0) && bad++ < 3)
                test_fail(__FILE__, __LINE__, "case %s: select[%lld]: expected %d, got %d", c->name,
                          (long long)t, (int)es->v[t], (int)select[t]);
        }
    }
    CHECK(gv_compare_scalar(c, "exp_loss", loss));
    CHECK(gv_compare_scalar(c, "exp_pg_loss", pg));
    gv_compare_scalar(c, "exp_kl_loss", kl);
    gv_compare_scalar(c, "exp_entropy_loss", ent);
    free(offsets); free(count); free(mask); free(select); free(sel_entropy); free(logp); free(logp_old);
    free(logp_aug); free(logp_ref); free(adv_seq); free(entropy); free(dep); free(traj); free(scale); free(adv);
    free(dlogp);
    return 1;
}

void golden_release_update_policy(void)
{
    gv_file f;
    int ci, cases = 0, multi = 0;
    if (!gv_load("golden_release.txt", &f)) return;
    for (ci = 0; ci < f.n_cases; ++ci) {
        const gv_item *ranks;
        if (strcmp(f.cases[ci].kind, "vppo_step") != 0) continue;
        cases += golden_release_case(&f.cases[ci]);
        ranks = gv_find(&f.cases[ci], "ranks");
        multi += ranks && ranks->count > 2;
    }
    CHECK(cases >= 8);
    CHECK(multi >= 1);    /* at least one case with several ranks */
    gv_free(&f);
}

/* ------------------------------------------------------------- torch.nn.functional */

void golden_torch_logits_kernels(void)
{
    gv_file f;
    int ci, cases = 0, seen[3] = { 0, 0, 0 };
    if (!gv_load("golden_torch.txt", &f)) return;
    for (ci = 0; ci < f.n_cases; ++ci) {
        const gv_case *c = &f.cases[ci];
        const gv_item *dims = gv_need(c, "dims", GV_I64, 2), *zi, *zai, *idi;
        int64_t R, V, i;
        int dtype;
        void *z = NULL, *za = NULL;
        float *logp, *lse, *ent, *kl, *kl_rev, *js, *dz, *g, *h;
        int32_t *ids;
        vppo_logits x, xa;
        vppo_grad_out gout;
        if (strcmp(c->kind, "logits") != 0 || !dims) continue;
        R = (int64_t)dims->v[0]; V = (int64_t)dims->v[1];
        dtype = (int)gv_scalar(c, "dtype", GV_I64);
        zi = gv_need(c, "logits", dtype == VPPO_F32 ? GV_F32 : GV_U16, R * V);
        zai = gv_need(c, "aug", dtype == VPPO_F32 ? GV_F32 : GV_U16, R * V);
        idi = gv_need(c, "ids", GV_I32, R);
        if (!zi || !zai || !idi || dtype < 0 || dtype > 2) continue;
        if (dtype == VPPO_F32) {
            z = gv_floats(zi);
            za = gv_floats(zai);
        } else {
            uint16_t *h16 = (uint16_t *)malloc((size_t)(R * V) * sizeof *h16);
            uint16_t *ha16 = (uint16_t *)malloc((size_t)(R * V) * sizeof *ha16);
            for (i = 0; i < R * V; ++i) { h16[i] = (uint16_t)zi->v[i]; ha16[i] = (uint16_t)zai->v[i]; }
            z = h16; za = ha16;
        }
        ids = (int32_t *)malloc((size_t)R * sizeof *ids);
        for (i = 0; i < R; ++i) ids[i] = (int32_t)idi->v[i];
        g = gv_floats(gv_need(c, "dlogp", GV_F32, R));
        h = gv_floats(gv_need(c, "dentropy", GV_F32, R));
        logp = floats_new(R, 0); lse = floats_new(R, 0); ent = floats_new(R, 0);
        kl = floats_new(R, 0); kl_rev = floats_new(R, 0); js = floats_new(R, 0); dz = floats_new(R * V, 0);
        x.data = z; x.dtype = (vppo_dtype)dtype; x.n_rows = R; x.vocab = V; x.row_stride = V;
        x.temperature = (float)gv_scalar(c, "temp", GV_F32);
        xa = x;
        xa.data = za;
        xa.temperature = (float)gv_scalar(c, "temp_aug", GV_F32);
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, ids, logp, lse, ent));
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&x, &xa, VPPO_DIV_KL, kl));
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&x, &xa, VPPO_DIV_KL_REVERSE, kl_rev));
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&x, &xa, VPPO_DIV_JS, js));
        gout.data = dz; gout.dtype = VPPO_F32; gout.row_stride = V;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&x, ids, NULL, NULL, g, h, &gout));
        gv_compare(c, "exp_logp", logp, R, TOL_LSE);
        gv_compare(c, "exp_lse", lse, R, TOL_LSE);
        gv_compare(c, "exp_entropy", ent, R, TOL_DIV);
        gv_compare(c, "exp_kl", kl, R, TOL_DIV);
        gv_compare(c, "exp_kl_rev", kl_rev, R, TOL_DIV);
        gv_compare(c, "exp_js", js, R, TOL_DIV);
        gv_compare(c, "exp_dlogits", dz, R * V, TOL_DLOGITS);
        seen[dtype] = 1;
        ++cases;
        free(z); free(za); free(ids); free(g); free(h); free(logp); free(lse); free(ent); free(kl); free(kl_rev);
        free(js); free(dz);
    }
    CHECK(cases >= 6);
    CHECK(seen[0] && seen[1] && seen[2]);   /* f32, bf16, f16 */
    gv_free(&f);
}
