/* Declarations only, strict C99: the header without the implementation. */
#include "../../vppo.h"
#include "../../vppo.h"   /* included twice: the guard holds */

int decl_only_uses_the_api(void);
int decl_only_uses_the_api(void)
{
    vppo_config cfg = vppo_config_default();
    return (int)cfg.estimator + (int)vppo_isa_active();
}
