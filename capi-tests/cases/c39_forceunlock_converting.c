// LIB: both
// Spec 11.39: FORCEUNLOCK of a lock whose conversion is queued -> AST EUNLOCK
// (no separate conversion AST); the other waiters are re-evaluated: a PR
// request that waited behind the conversion is granted.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "fu", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "fu", 0);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CONVERT, "fu"));
    REQUIRE_OK(t_lock_nb(ls, &c, LKM_PRMODE, 0, "fu"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&b) == 1, "B's conversion was not queued");
    CHECK_EQ(lk_asts(&c), 0);

    CHECK_OK(t_unlock(ls, &b, LKF_FORCEUNLOCK));
    CHECK(lk_wait(&b, T_POS_MS), "no AST for the force-unlock");
    CHECK_EQ(b.lksb.sb_status, EUNLOCK);
    CHECK(lk_wait(&c, T_POS_MS), "C not granted after the converting lock was force-unlocked");
    CHECK_EQ(c.lksb.sb_status, 0);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_filter(0, EV_AST, "B"), "ast:B:0 ast:B:EUNLOCK");
    t_ls_release(ls);
    return t_done();
}
