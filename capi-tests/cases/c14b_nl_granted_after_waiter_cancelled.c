// LIB: both
// Spec 11.14: the NL request queued behind an EX waiter is granted once that
// waiter is cancelled, while the EX holder still holds the resource.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w, n;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&n, "N", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "x", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "x"));
    REQUIRE_OK(t_lock_nb(ls, &n, LKM_NLMODE, 0, "x"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&n), 0);

    REQUIRE_OK(t_unlock(ls, &w, LKF_CANCEL));
    CHECK(lk_wait(&w, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(w.lksb.sb_status, ECANCEL);
    CHECK(lk_wait(&n, T_POS_MS), "N not granted after the waiter ahead was cancelled");
    CHECK_EQ(n.lksb.sb_status, 0);
    CHECK_EQ(lk_asts(&h), 1);
    t_ls_release(ls);
    return t_done();
}
