// LIB: both
// Spec 11.22: A holds NL, B holds PR, C waits for EX. A converts NL->PR ->
// granted immediately (conversions overtake waiting requests); C still waits.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, 0, "cp", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "cp", 0);
    REQUIRE_OK(t_lock_nb(ls, &c, LKM_EXMODE, 0, "cp"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&c) == 0, "EX was granted against PR");

    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_CONVERT, "cp", 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&c), 0);

    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&c, T_POS_MS), "C not granted at the end");
    t_ls_release(ls);
    return t_done();
}
