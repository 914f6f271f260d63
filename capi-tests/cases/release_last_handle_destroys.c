// LIB: both
// Oracle 01/06 / spec 2.10: dlm_release_lockspace(force=0) of the only handle
// while it holds locks returns 0 (its locks are dropped with it) and the
// lockspace is gone: dlm_open_lockspace -> NULL/ENOENT.
#include "../common.h"

int main(void)
{
    T_INIT();
    const char *name = t_ls_name(NULL);
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "r", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, 0, "r2", 0);
    t_forget_handle(ls);
    CHECK_EQ(dlm_release_lockspace(name, ls, 0), 0);
    CHECK_NULL_ERR(dlm_open_lockspace(name), ENOENT);
    return t_done();
}
