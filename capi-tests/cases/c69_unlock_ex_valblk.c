// LIB: both
// Spec 11.69 / 5.6: unlocking an EX|VALBLK lock with LKF_VALBLK succeeds (AST
// EUNLOCK); the stored LVB value is unspecified in the reference, so only the
// call, the AST and the next VALBLK grant are checked.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "l69", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l69", 0);
    strcpy(a.lvb, "unlock-value");
    UNLOCK_EXPECT(ls, &a, LKF_VALBLK, EUNLOCK);
    LOCK_EXPECT_NB(ls, &n, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "l69", 0);
    t_ls_release(ls);
    return t_done();
}
