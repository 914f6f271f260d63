// LIB: both
// Spec 11.21: holder PR, waiter EX, then a new PR request -> it waits (no AST)
// behind the incompatible EX waiter; the same request with LKF_NOORDER is
// granted immediately. The plain PR is served after the EX waiter.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w, n, o;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&n, "N", 0);
    lk_init(&o, "O", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_PRMODE, 0, "o", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "o"));
    REQUIRE_OK(t_lock_nb(ls, &n, LKM_PRMODE, 0, "o"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 0);
    CHECK_EQ(lk_asts(&n), 0);

    LOCK_EXPECT_NB(ls, &o, LKM_PRMODE, LKF_NOORDER, "o", 0);
    CHECK_EQ(lk_asts(&n), 0);

    UNLOCK_EXPECT(ls, &o, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "EX waiter not granted");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&n), 0);
    UNLOCK_EXPECT(ls, &w, 0, EUNLOCK);
    CHECK(lk_wait(&n, T_POS_MS), "PR waiter not granted after the EX waiter left");
    CHECK_EQ(n.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
