// LIB: both
// Spec 11.52 / 6.1: closing a handle (dlm_close_lockspace -> 0) discards its
// pending callbacks (its routines are never called) and removes its waiting
// request (a later waiter from another handle is served in its place); its
// granted locks are released.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    dlm_lshandle_t ls2;
    struct lk h, w1, w2, g2;

    lk_init(&h, "H", 0);
    lk_init(&w1, "W1", 0);
    lk_init(&w2, "W2", 0);
    lk_init(&g2, "G2", 0);
    /* second handle, deliberately not registered for pumping */
    ls2 = dlm_open_lockspace(t_ls_name(NULL));
    REQUIRE(ls2 != NULL, "dlm_open_lockspace errno %d", errno);

    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "cl", 0);
    REQUIRE_OK(t_lock(ls2, &w2, LKM_EXMODE, 0, "cl"));      /* waits */
    REQUIRE_OK(t_lock(ls2, &g2, LKM_EXMODE, 0, "cl-g"));    /* granted, AST pending */
    REQUIRE(wait_readable(dlm_ls_get_fd(ls2), T_POS_MS), "second handle has no pending callback");
    REQUIRE_OK(t_lock_nb(ls, &w1, LKM_PRMODE, 0, "cl"));    /* waits behind W2 */
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w1), 0);

    CHECK_EQ(dlm_close_lockspace(ls2), 0);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w1, T_POS_MS), "W1 not granted: the closed handle's waiting request was not removed");
    CHECK_EQ(w1.lksb.sb_status, 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w2) + lk_basts(&w2) + lk_asts(&g2) + lk_basts(&g2), 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "cl-g"), 0);
    t_ls_release(ls);
    return t_done();
}
