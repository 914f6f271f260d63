// LIB: both
// Spec 11.24: holder EX; waiter A (EX) queued; B requests PR with LKF_HEADQUE
// -> when the holder unlocks, B is granted first and A keeps waiting.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a, b;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "hq", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, 0, "hq"));
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_PRMODE, LKF_HEADQUE, "hq"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 0);
    CHECK_EQ(lk_asts(&b), 0);

    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "HEADQUE request not granted first");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 0);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted at the end");
    t_ls_release(ls);
    return t_done();
}
