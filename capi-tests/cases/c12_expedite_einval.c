// LIB: both
// Spec 11.12: LKF_EXPEDITE is only valid on a new NL request without NOQUEUE:
// with PR -> -1/EINVAL; with CONVERT -> -1/EINVAL; with NOQUEUE -> -1/EINVAL.
// A plain EXPEDITE NL request is granted.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_PRMODE, LKF_EXPEDITE, "e"), EINVAL);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_EXMODE, LKF_EXPEDITE, "e"), EINVAL);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_NLMODE, LKF_EXPEDITE | LKF_NOQUEUE, "e"), EINVAL);

    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, 0, "e", 0);
    CHECK_FAIL(t_lock_nb(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_EXPEDITE, "e"), EINVAL);

    LOCK_EXPECT_NB(ls, &c, LKM_NLMODE, LKF_EXPEDITE, "e", 0);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&b), 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
