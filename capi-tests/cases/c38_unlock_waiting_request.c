// LIB: both
// Spec 11.38 / 6.3: a plain unlock of a waiting request (single node) returns
// 0 and produces exactly one AST, status EUNLOCK; no grant AST ever follows,
// even after the holder leaves.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "uw", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "uw"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was granted");
    CHECK_OK(t_unlock(ls, &w, 0));
    CHECK(lk_wait(&w, T_POS_MS), "no AST for the unlock of the waiting request");
    CHECK_EQ(w.lksb.sb_status, EUNLOCK);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_filter(0, EV_ANY, "W"), "ast:W:EUNLOCK");
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "uw"), 0);
    t_ls_release(ls);
    return t_done();
}
