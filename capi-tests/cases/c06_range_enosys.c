// LIB: both
// Spec 11.6 / 2.13: a non-NULL range argument -> -1/ENOSYS (range locks never
// existed); nothing is queued.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;
    uint64_t range[2] = { 0, 100 };

    lk_init(&a, "A", 0);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_EXMODE, &a.lksb, 0, "r", 1, 0, rec_ast, &a, NULL, range), ENOSYS);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &a.lksb, LKF_NOQUEUE, "r", 1, 0, rec_ast, &a, rec_bast, range), ENOSYS);
    CHECK(!wait_readable(fd, T_NEG_MS), "AST queued for a rejected request");
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "r"), 0);
    t_ls_release(ls);
    return t_done();
}
