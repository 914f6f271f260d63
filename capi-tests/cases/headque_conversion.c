// LIB: both
// Spec 3.2: LKF_HEADQUE on a conversion puts it at the head of the converting
// queue: A holds PR; B (NL->EX) queues first, then C (NL->PW|HEADQUE); when A
// leaves, C is granted PW first and B keeps waiting until C leaves.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "hc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, 0, "hc", 0);
    LOCK_EXPECT_NB(ls, &c, LKM_NLMODE, 0, "hc", 0);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CONVERT, "hc"));
    settle(T_NEG_MS);
    REQUIRE_OK(t_lock_nb(ls, &c, LKM_PWMODE, LKF_CONVERT | LKF_HEADQUE, "hc"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 1);
    CHECK_EQ(lk_asts(&c), 1);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK(lk_wait(&c, T_POS_MS), "C (HEADQUE) not granted first");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 1);
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted after C left");
    t_ls_release(ls);
    return t_done();
}
