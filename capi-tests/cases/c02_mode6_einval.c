// LIB: both
// Spec 11.2 / 2.13: mode 6 -> -1/EINVAL, no AST, sb_status left at EINPROG
// (the library stores EINPROG before the request is rejected; oracle 01).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;

    lk_init(&a, "A", 0);
    CHECK_FAIL(dlm_ls_lock(ls, 6, &a.lksb, 0, "m6", 2, 0, rec_ast, &a, rec_bast, NULL), EINVAL);
    CHECK_EQ(a.lksb.sb_status, EINPROG);
    CHECK(!wait_readable(fd, T_NEG_MS), "an AST was queued for a rejected request");
    settle(20);
    CHECK_SEQ(rec_str(), "");

    /* the resource is still free */
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "m6"), 0);
    t_ls_release(ls);
    return t_done();
}
