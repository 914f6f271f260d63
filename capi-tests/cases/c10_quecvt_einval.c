// LIB: both
// Spec 11.10: QUECVT without CONVERT -> -1/EINVAL; QUECVT on a downward
// conversion (EX->NL) -> -1/EINVAL; QUECVT on a same-mode conversion (PR->PR)
// -> -1/EINVAL. The locks stay usable.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    CHECK_FAIL(t_lock_nb(ls, &c, LKM_EXMODE, LKF_QUECVT, "q0"), EINVAL);

    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "q1", 0);
    CHECK_FAIL(t_lock_nb(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_QUECVT, "q1"), EINVAL);

    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "q2", 0);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_PRMODE, LKF_CONVERT | LKF_QUECVT, "q2"), EINVAL);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_CRMODE, LKF_CONVERT | LKF_QUECVT, "q2"), EINVAL);

    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&b), 1);
    CHECK_EQ(lk_asts(&c), 0);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "q0"), 0);

    /* still usable: plain conversions work */
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT, "q1", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_EXMODE, LKF_CONVERT | LKF_QUECVT, "q2", 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
