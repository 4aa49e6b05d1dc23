// A C++ translation unit that uses the C API through extern "C" and links against an
// implementation compiled as C (tests/compile/impl.c).
#include "../../vppo.h"
#include <cstdio>
#include <cstring>

int main()
{
    vppo_config cfg = vppo_config_default();
    int64_t offsets[3];
    float logp[4] = { -1.0f, -1.1f, -0.9f, -1.2f }, old[4] = { -1.0f, -1.0f, -1.0f, -1.0f };
    float aug[4] = { -1.5f, -1.0f, -2.0f, -1.1f }, adv_seq[2] = { 1.0f, -1.0f }, dlogp[4];
    float dep[4], traj[2], scale[2], adv[4];
    int64_t count[2];
    uint8_t select[4];
    vppo_prepared p;
    vppo_loss_out out;
    vppo_seqs s;
    std::memset(&p, 0, sizeof p);
    p.dep = dep; p.traj_dep = traj; p.count = count; p.scale = scale; p.adv = adv; p.select = select;
    vppo_offsets_uniform(offsets, 2, 2);
    s.n_seqs = 2; s.offsets = offsets; s.mask = NULL;
    vppo_status st = vppo_step(&cfg, &s, logp, old, aug, NULL, adv_seq, &p, dlogp, &out);
    if (st != VPPO_OK) { std::printf("two_tu: %s\n", vppo_status_string(st)); return 1; }
    if (out.n_valid != 4) { std::printf("two_tu: n_valid %lld\n", (long long)out.n_valid); return 1; }
    std::printf("two translation units (C++ caller, C implementation): ok, loss %.6f\n", out.loss);
    return 0;
}
