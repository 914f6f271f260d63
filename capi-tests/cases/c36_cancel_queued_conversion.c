// LIB: both
// Spec 11.36 / oracle 02 step 4: cancelling a queued conversion PR->EX -> AST
// ECANCEL; the lock is still PR (CW conflicts, PR does not) and can be
// converted and unlocked afterwards.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "cc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "cc", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "cc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&a) == 1, "A's conversion was not queued");
    CHECK_OK(t_unlock(ls, &a, LKF_CANCEL));
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(a.lksb.sb_status, ECANCEL);
    CHECK_EQ(a.lksb.sb_lkid != 0, 1);

    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "cc"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "cc"), 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT, "cc", 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
