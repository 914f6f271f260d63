// LIB: both
// Spec 11.14 / 3.3: a plain NL request (no EXPEDITE) while an EX holder and a
// queued EX waiter exist stays waiting although NL is compatible with
// everything; it is granted only after the waiter ahead of it is granted.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w, n;
    int mark;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&n, "N", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "x", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "x"));
    REQUIRE_OK(t_lock_nb(ls, &n, LKM_NLMODE, 0, "x"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 0);
    CHECK_EQ(lk_asts(&n), 0);

    mark = rec_count();
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted");
    CHECK(lk_wait(&n, T_POS_MS), "N not granted");
    CHECK_EQ(w.lksb.sb_status, 0);
    CHECK_EQ(n.lksb.sb_status, 0);
    CHECK_SEQ(rec_str_filter(mark, EV_AST, "W N"), "ast:W:0 ast:N:0");
    t_ls_release(ls);
    return t_done();
}
