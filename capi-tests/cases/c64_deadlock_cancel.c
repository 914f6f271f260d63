// LIB: both
// Spec 11.64 / 2.11: dlm_ls_deadlock_cancel on a waiting request -> 0, the
// request's AST reports EDEADLK (35) and its id is dead; lkid 0 -> -1/EINVAL;
// NULL handle -> -1/ENOTCONN.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    struct dlm_lksb s;
    uint32_t id;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    CHECK_FAIL(dlm_ls_deadlock_cancel(NULL, 1, 0), ENOTCONN);
    CHECK_FAIL(dlm_ls_deadlock_cancel(ls, 0, 0), EINVAL);

    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "dc", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "dc"));
    id = w.lksb.sb_lkid;
    w.expect = 1;
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was granted");
    CHECK_EQ(dlm_ls_deadlock_cancel(ls, id, 0), 0);
    CHECK(lk_wait(&w, T_POS_MS), "no AST for the deadlock-cancelled request");
    CHECK_EQ(w.lksb.sb_status, EDEADLK);
    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_unlock(ls, id, 0, &s, NULL), ENOENT);
    CHECK_EQ(lk_asts(&h), 1);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "dc"), 0);
    t_ls_release(ls);
    return t_done();
}
