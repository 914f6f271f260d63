// LIB: both
// Spec 11.65 / 2.11: dlm_ls_lockx with LKF_TIMEOUT and a 1-centisecond timeout
// on a blocked request -> no ETIMEDOUT (timeouts are gone since Linux 6.4): the
// request keeps waiting and is granted when the holder leaves.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    uint64_t timeout = 1, xid = 42;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "to", 0);
    w.expect = 1;
    CHECK_OK(dlm_ls_lockx(ls, LKM_EXMODE, &w.lksb, LKF_TIMEOUT, "to", 2, 0, rec_ast, &w, NULL, &xid, &timeout));
    settle(1000);
    CHECK_EQ(lk_asts(&w), 0);
    CHECK_EQ(w.lksb.sb_status, EINPROG);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted");
    CHECK_EQ(w.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
