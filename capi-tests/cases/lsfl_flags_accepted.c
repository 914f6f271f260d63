// LIB: both
// Spec 1.6: dlm_new_lockspace accepts DLM_LSFL_TIMEWARN (no effect) and
// DLM_LSFL_FS (no user-visible effect); the lockspaces work normally.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1, h2;
    struct lk a, b;

    h1 = dlm_new_lockspace(t_ls_name("tw"), 0600, DLM_LSFL_TIMEWARN);
    CHECK(h1 != NULL, "TIMEWARN rejected: errno %d", errno);
    h2 = dlm_new_lockspace(t_ls_name("fs"), 0600, DLM_LSFL_FS);
    CHECK(h2 != NULL, "FS rejected: errno %d", errno);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    if (h1) {
        t_register_handle(h1);
        LOCK_EXPECT_NB(h1, &a, LKM_EXMODE, 0, "r", 0);
        t_ls_release_sfx(h1, "tw");
    }
    if (h2) {
        t_register_handle(h2);
        LOCK_EXPECT_NB(h2, &b, LKM_EXMODE, 0, "r", 0);
        t_ls_release_sfx(h2, "fs");
    }
    return t_done();
}
