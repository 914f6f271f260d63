// LIB: both
// Spec 11.23: A holds PR. C holds NL and converts NL->EX (queued behind A).
// B holds NL and converts NL->PR with QUECVT -> queued behind C (no AST);
// B2 holds NL and converts NL->PR without QUECVT -> granted at once.
// Later: A and B2 leave -> C (first converter) gets EX, B still waits;
// C leaves -> B gets PR.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, b2, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&b2, "B2", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "qc", 0);
    LOCK_EXPECT_NB(ls, &c, LKM_NLMODE, 0, "qc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, 0, "qc", 0);
    LOCK_EXPECT_NB(ls, &b2, LKM_NLMODE, 0, "qc", 0);

    REQUIRE_OK(t_lock_nb(ls, &c, LKM_EXMODE, LKF_CONVERT, "qc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&c) == 1, "C's conversion to EX was not queued");

    REQUIRE_OK(t_lock_nb(ls, &b, LKM_PRMODE, LKF_CONVERT | LKF_QUECVT, "qc"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 1);

    LOCK_EXPECT_NB(ls, &b2, LKM_PRMODE, LKF_CONVERT, "qc", 0);
    CHECK_EQ(lk_asts(&b), 1);

    UNLOCK_EXPECT(ls, &b2, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK(lk_wait(&c, T_POS_MS), "C not granted EX");
    CHECK_EQ(c.lksb.sb_status, 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 1);
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted PR");
    CHECK_EQ(b.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
