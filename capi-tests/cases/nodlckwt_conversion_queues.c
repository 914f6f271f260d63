// LIB: both
// Spec 3.5: with LKF_NODLCKWT the second converter of a conversion deadlock is
// not refused with EDEADLK: its conversion stays queued (no AST). Cancelling it
// gives ECANCEL (the lock is still PR) and lets the first conversion through.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "nw", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "nw", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "nw"));
    settle(T_NEG_MS);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CONVERT | LKF_NODLCKWT, "nw"));
    settle(2 * T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&b), 1);
    CHECK_EQ(b.lksb.sb_status, EINPROG);
    REQUIRE_OK(t_unlock(ls, &b, LKF_CANCEL));
    CHECK(lk_wait(&b, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(b.lksb.sb_status, ECANCEL);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted");
    CHECK_EQ(a.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
