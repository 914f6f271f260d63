// LIB: both
// Spec 11.17 / 3.6: NOQUEUE|NOQUEUEBAST against an EX holder -> AST 11 for the
// requester and exactly one BAST to the holder, in that order (oracle 04).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, n;

    lk_init(&h, "H", 0);
    lk_init(&n, "N", 0);
    LOCK_EXPECT(ls, &h, LKM_EXMODE, 0, "r", 0);
    REQUIRE_OK(t_lock_nb(ls, &n, LKM_EXMODE, LKF_NOQUEUE | LKF_NOQUEUEBAST, "r"));
    CHECK(lk_wait(&n, T_POS_MS), "no AST for the NOQUEUE request");
    CHECK_EQ(n.lksb.sb_status, EAGAIN);
    CHECK(lk_wait_bast(&h, 1, T_POS_MS), "holder got no BAST");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:H:0 ast:N:EAGAIN bast:H");
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
