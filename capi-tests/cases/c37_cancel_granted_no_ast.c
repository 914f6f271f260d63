// LIB: both
// Spec 11.37 / 6.4: cancelling a granted lock with nothing pending returns 0
// and produces no AST at all (the fd does not become readable); sb_status
// stays EINPROG. The lock is still held and can be unlocked.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "cg", 0);
    settle(50);
    CHECK_OK(dlm_ls_unlock(ls, a.lksb.sb_lkid, LKF_CANCEL, &a.lksb, &a));
    CHECK_EQ(a.lksb.sb_status, EINPROG);
    CHECK(!wait_readable(fd, 2 * T_NEG_MS), "an AST was queued for a cancel with nothing to cancel");
    CHECK_EQ(a.lksb.sb_status, EINPROG);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "cg"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "cg"), EAGAIN);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
