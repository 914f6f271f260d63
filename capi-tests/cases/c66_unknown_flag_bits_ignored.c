// LIB: both
// Spec 11.66 / 2.4: unknown extra flag bits on a lock request (0x00100000) are
// accepted and ignored: the request behaves like a plain one.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0x00100000, "uf", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_NOQUEUE | 0x00100000, "uf", EAGAIN);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_CONVERT | 0x00100000, "uf", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_NOQUEUE, "uf", 0);
    t_ls_release(ls);
    return t_done();
}
