// LIB: both
// Spec 2.11 / 6.4: dlm_ls_deadlock_cancel of a granted lock with nothing
// pending -> 0 and no AST; of an unknown id -> -1/ENOENT; flags outside the
// unlock set -> -1/EINVAL.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;
    uint32_t live[1];

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "dn", 0);
    settle(50);
    CHECK_EQ(dlm_ls_deadlock_cancel(ls, a.lksb.sb_lkid, 0), 0);
    CHECK(!wait_readable(fd, 2 * T_NEG_MS), "an AST was queued");
    live[0] = a.lksb.sb_lkid;
    CHECK_FAIL(dlm_ls_deadlock_cancel(ls, t_unused_lkid(live, 1), 0), ENOENT);
    CHECK_FAIL(dlm_ls_deadlock_cancel(ls, a.lksb.sb_lkid, LKF_NOQUEUE), EINVAL);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "dn"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "dn"), EAGAIN);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
