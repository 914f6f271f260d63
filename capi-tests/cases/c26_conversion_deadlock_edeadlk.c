// LIB: both
// Spec 11.26 / oracle 02 step 6: A and B hold PR; A converts to EX (queued;
// B gets a BAST); B converts to EX -> dlm_ls_lock returns 0, B's AST reports
// EDEADLK (35) and B stays PR (A still waits); B unlocks -> A's AST 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "dl", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "dl", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, LKF_CONVERT, "dl"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);

    REQUIRE_OK(t_lock(ls, &b, LKM_EXMODE, LKF_CONVERT, "dl"));
    CHECK(lk_wait(&b, T_POS_MS), "no AST for B's deadlocking conversion");
    CHECK_EQ(b.lksb.sb_status, EDEADLK);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_SEQ(rec_str_from(mark), "bast:B ast:B:EDEADLK");

    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted after B unlocked");
    CHECK_EQ(a.lksb.sb_status, 0);
    settle(50);
    CHECK_SEQ(rec_str_filter(mark, EV_AST, NULL), "ast:B:EDEADLK ast:B:EUNLOCK ast:A:0");
    t_ls_release(ls);
    return t_done();
}
