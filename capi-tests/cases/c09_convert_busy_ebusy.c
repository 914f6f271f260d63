// LIB: both
// Spec 11.9: CONVERT of a lock still on the waiting queue -> -1/EBUSY; of a
// lock whose conversion is already queued -> -1/EBUSY. Neither disturbs the
// pending operation. (The rejected conversions are issued with the lock's own
// lksb, routine and argument: the kernel replaces a lock's callback parameters
// before it validates a conversion, so a rejected conversion with other
// parameters would re-route the pending completion.)
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w, a, b;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);

    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "r1", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "r1"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was not queued");
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &w.lksb, LKF_CONVERT, "r1", 2, 0, rec_ast, &w, NULL, NULL), EBUSY);
    CHECK_EQ(w.lksb.sb_status, EINPROG);

    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "r2", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "r2", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "r2"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&a) == 1, "A's conversion was not queued");
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &a.lksb, LKF_CONVERT, "r2", 2, 0, rec_ast, &a, NULL, NULL), EBUSY);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_CRMODE, &a.lksb, LKF_CONVERT | LKF_NOQUEUE, "r2", 2, 0, rec_ast, &a, NULL, NULL), EBUSY);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&w), 0);

    /* the pending operations complete normally */
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted");
    CHECK_EQ(w.lksb.sb_status, 0);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A's conversion not granted");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "r2"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "r2"), EAGAIN);
    t_ls_release(ls);
    return t_done();
}
