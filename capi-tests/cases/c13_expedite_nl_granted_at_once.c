// LIB: both
// Spec 11.13: EXPEDITE NL while an EX holder exists and a PR waiter is queued
// -> granted at once (AST 0) while the PR waiter keeps waiting.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w, e;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&e, "E", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "x", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_PRMODE, 0, "x"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "PR waiter was granted against EX");

    LOCK_EXPECT_NB(ls, &e, LKM_NLMODE, LKF_EXPEDITE, "x", 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 0);

    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "PR waiter not granted after the EX holder left");
    CHECK_EQ(w.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
