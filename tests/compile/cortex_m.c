/* vppo.h on a bare-metal Cortex-M (arm-none-eabi-gcc, newlib, --specs=nosys.specs): the whole
   implementation in one freestanding-style program that runs one VPPO step on a tiny batch, so
   the link pulls in the pipeline, the loss, TAS and TGF. Built by `make test-cortex-m` for an
   M4F (hard float) and an M0 (no FPU), -Werror; nothing here runs, the point is that the header
   compiles cleanly and links where enums are short, int is 32 bits and there is no OS. */
#define VPPO_IMPLEMENTATION
#include "../../vppo.h"

int main(void)
{
    static const int64_t offsets[3] = {0, 4, 8};
    static const float logp[8] = {-0.5f, -1.0f, -0.2f, -2.0f, -0.7f, -0.1f, -1.5f, -0.3f};
    static const float logp_aug[8] = {-0.9f, -1.0f, -0.6f, -2.5f, -0.7f, -0.4f, -1.6f, -0.3f};
    static const float adv_seq[2] = {1.0f, -1.0f};
    float dep[8], traj_dep[2], scale[2], adv[8], dlogp[8];
    int64_t count[2];
    uint8_t select[8];
    vppo_loss_out out;
    vppo_prepared prep;
    vppo_seqs seqs;
    vppo_config cfg = vppo_config_default();
    seqs.n_seqs = 2;
    seqs.offsets = offsets;
    seqs.mask = NULL;
    prep.dep = dep; prep.traj_dep = traj_dep; prep.count = count;
    prep.scale = scale; prep.adv = adv; prep.select = select;
    return (int)vppo_step(&cfg, &seqs, logp, logp, logp_aug, NULL, adv_seq, &prep, dlogp, &out);
}
