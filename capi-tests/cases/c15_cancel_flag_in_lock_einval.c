// LIB: both
// Spec 11.15: LKF_CANCEL passed to dlm_ls_lock -> -1/EINVAL (new request and
// conversion).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    CHECK_FAIL(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CANCEL, "c"), EINVAL);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "c", 0);
    CHECK_FAIL(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_CANCEL, "c"), EINVAL);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    CHECK_EQ(lk_asts(&b), 0);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "c"), 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "c"), EAGAIN);
    t_ls_release(ls);
    return t_done();
}
