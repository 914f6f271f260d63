// LIB: both
// Spec 11.59 / 1.6: dlm_new_lockspace(..., DLM_LSFL_NEWEXCL) on an existing
// lockspace -> NULL/EEXIST; on a fresh name it succeeds.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1, h2;

    h1 = dlm_new_lockspace(t_ls_name("a"), 0600, DLM_LSFL_NEWEXCL);
    REQUIRE(h1 != NULL, "NEWEXCL create of a fresh lockspace -> NULL errno %d", errno);
    CHECK_NULL_ERR(dlm_new_lockspace(t_ls_name("a"), 0600, DLM_LSFL_NEWEXCL), EEXIST);
    h2 = dlm_new_lockspace(t_ls_name("a"), 0600, 0);
    CHECK(h2 != NULL, "plain create of the existing lockspace failed errno %d", errno);
    if (h2) CHECK_EQ(dlm_release_lockspace(t_ls_name("a"), h2, 0), 0);
    CHECK_EQ(dlm_release_lockspace(t_ls_name("a"), h1, 1), 0);
    return t_done();
}
