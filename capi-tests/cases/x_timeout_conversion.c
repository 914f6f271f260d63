// LIB: both
// udlm extension (include/udlm.h): a conversion made with LKF_TIMEOUT in a
// UDLM_LSFL_TIMEOUT lockspace that is not granted in time ends with
// ETIMEDOUT and the lock keeps its granted mode (here PR: a PR probe still
// succeeds, an EX probe still fails, and the lock converts on afterwards);
// LKF_TIMEOUT with no timeout at all ends a blocked request at once.
#include "../common.h"
#include "../../include/udlm.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create_flags(NULL, UDLM_LSFL_TIMEOUT);
    struct lk a, b, z;
    uint64_t xid = 1, cs25 = 25;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&z, "Z", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "cv", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "cv", 0);

    a.expect = lk_asts(&a) + 1;
    CHECK_OK(dlm_ls_lockx(ls, LKM_EXMODE, &a.lksb, LKF_CONVERT | LKF_TIMEOUT, "cv", 2, 0,
                          rec_ast, &a, NULL, &xid, &cs25));
    settle(150);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK(lk_wait(&a, T_POS_MS), "no completion for the timed-out conversion");
    CHECK_EQ(a.lksb.sb_status, UDLM_ETIMEDOUT);
    /* still PR */
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "cv"), 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "cv"), EAGAIN);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT, "cv", 0);

    /* LKF_TIMEOUT without a timeout: a blocked request ends at once */
    LOCK_EXPECT_NB(ls, &z, LKM_EXMODE, LKF_TIMEOUT, "cv", UDLM_ETIMEDOUT);

    /* B, alone in PR (A is NL), converts to EX with a timeout: granted */
    b.expect = lk_asts(&b) + 1;
    CHECK_OK(dlm_ls_lockx(ls, LKM_EXMODE, &b.lksb, LKF_CONVERT | LKF_TIMEOUT, "cv", 2, 0,
                          rec_ast, &b, NULL, &xid, &cs25));
    CHECK(lk_wait(&b, T_POS_MS), "B's conversion not granted");
    CHECK_EQ(b.lksb.sb_status, 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
