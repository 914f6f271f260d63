// LIB: both
// Spec 11.11: CONVDEADLK without CONVERT -> -1/EINVAL; CONVDEADLK|NOQUEUE on a
// conversion -> -1/EINVAL.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CONVDEADLK, "d"), EINVAL);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "d", 0);
    CHECK_FAIL(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_CONVDEADLK | LKF_NOQUEUE, "d"), EINVAL);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&b), 0);
    /* CONVDEADLK on a plain conversion is fine */
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_CONVDEADLK, "d", 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
