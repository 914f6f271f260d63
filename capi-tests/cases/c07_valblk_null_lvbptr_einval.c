// LIB: both
// Spec 11.7: LKF_VALBLK with sb_lvbptr == NULL -> -1/EINVAL, for a new request
// and for a conversion; checked by the library (sb_status untouched, oracle 03).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    a.lksb.sb_status = 0;
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &a.lksb, LKF_VALBLK, "v", 1, 0, rec_ast, &a, NULL, NULL), EINVAL);
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK(!wait_readable(fd, T_NEG_MS), "AST queued for a rejected request");

    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "v", 0);
    b.lksb.sb_status = 0;
    CHECK_FAIL(dlm_ls_lock(ls, LKM_EXMODE, &b.lksb, LKF_CONVERT | LKF_VALBLK, "v", 1, 0, rec_ast, &b, NULL, NULL), EINVAL);
    CHECK_EQ(b.lksb.sb_status, 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 1);
    /* the lock is unharmed */
    LOCK_EXPECT_NB(ls, &b, LKM_EXMODE, LKF_CONVERT, "v", 0);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
