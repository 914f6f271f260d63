// LIB: lt
// Spec 11.41 / 2.6: libdlm_lt: a request queued with async dlm_ls_lock (AST
// routine F), then dlm_ls_unlock_wait(LKF_CANCEL) -> F runs once with its
// original argument, the call returns -1 with errno ECANCEL (65537) and
// sb_status ECANCEL.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    int rv, e;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "lc", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "lc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was granted");
    errno = 0;
    rv = dlm_ls_unlock_wait(ls, w.lksb.sb_lkid, LKF_CANCEL, &w.lksb);
    e = errno;
    CHECK(rv == -1 && e == ECANCEL, "unlock_wait(CANCEL) -> %d errno %s, expected -1/ECANCEL", rv, t_errname(e));
    CHECK_EQ(w.lksb.sb_status, ECANCEL);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_filter(0, EV_ANY, "W"), "ast:W:ECANCEL");
    t_ls_release(ls);
    return t_done();
}
