// LIB: both
// Spec 6.1/6.2 on one node: a handle holds A (CW, not persistent) and B
// (PERSISTENT NL) on "r", B converting to EX behind A. Closing the handle
// releases A first (locks go in the order they were taken), which grants B's
// conversion silently, and then leaves B as an orphan in EX. Adoption must
// go by that mode: NL -> EAGAIN, EX -> the orphan. (The node once adopted it
// by the mode its own record last saw, NL; with a remote master it adopted
// the orphan in NL, since its master never said the mode had changed.)
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    dlm_lshandle_t h2 = t_ls_open();
    struct lk a, b, x, o;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&x, "X", 0);
    lk_init(&o, "O", 0);
    LOCK_EXPECT_NB(h2, &a, LKM_CWMODE, 0, "r", 0);
    LOCK_EXPECT_NB(h2, &b, LKM_NLMODE, LKF_PERSISTENT, "r", 0);
    CHECK_OK(t_lock_nb(h2, &b, LKM_EXMODE, LKF_CONVERT | LKF_PERSISTENT, "r"));
    settle(200);
    CHECK_EQ(lk_asts(&b), 1);
    t_forget_handle(h2);
    CHECK_EQ(dlm_close_lockspace(h2), 0);

    /* waits until LKF_ORPHAN in NL answers EAGAIN: an orphan in another mode */
    CHECK(t_wait_orphan(ls, "r", LKM_NLMODE, T_POS_MS), "no orphan in a mode other than NL for \"r\"");
    CHECK_FAIL(t_lock(ls, &x, LKM_NLMODE, LKF_ORPHAN, "r"), EAGAIN);
    CHECK_OK(t_lock(ls, &o, LKM_EXMODE, LKF_ORPHAN, "r"));
    CHECK_EQ(o.lksb.sb_lkid, b.lksb.sb_lkid);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "r"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "r"), EAGAIN);
    UNLOCK_EXPECT(ls, &o, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
