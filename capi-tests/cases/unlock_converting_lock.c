// LIB: both
// Spec 6.3: a plain unlock of a lock whose conversion is queued (single node)
// is accepted: one AST, EUNLOCK, no separate conversion AST; the resource is
// then free of it.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "uc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "uc", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "uc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&a) == 1, "A's conversion was not queued");
    CHECK_OK(t_unlock(ls, &a, 0));
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the unlock");
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_filter(0, EV_ANY, "A"), "ast:A:0 ast:A:EUNLOCK");
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "uc"), 0);
    t_ls_release(ls);
    return t_done();
}
