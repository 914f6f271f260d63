// LIB: both
// Spec 2.11: dlm_ls_deadlock_cancel on a queued conversion -> 0; the
// conversion's AST reports EDEADLK and the lock falls back to its granted mode
// (PR), still usable.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "dcc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "dcc", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "dcc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&a) == 1, "A's conversion was not queued");
    CHECK_EQ(dlm_ls_deadlock_cancel(ls, a.lksb.sb_lkid, 0), 0);
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the deadlock-cancelled conversion");
    CHECK_EQ(a.lksb.sb_status, EDEADLK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "dcc"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "dcc"), 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
