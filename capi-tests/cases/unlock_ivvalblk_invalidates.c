// LIB: both
// Spec 5.4: an unlock from EX with LKF_IVVALBLK marks the LVB invalid: the
// next VALBLK grant carries DLM_SBF_VALNOTVALID (with the old value).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a, b;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, 0, "ui", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "ui", 0);
    strcpy(a.lvb, "before-invalidation");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "ui", 0);
    UNLOCK_EXPECT(ls, &a, LKF_IVVALBLK, EUNLOCK);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "ui", 0);
    CHECK((b.lksb.sb_flags & DLM_SBF_VALNOTVALID) != 0, "sb_flags 0x%x lack VALNOTVALID", (unsigned char)b.lksb.sb_flags);
    CHECK(strcmp(b.lvb, "before-invalidation") == 0, "B read \"%.31s\"", b.lvb);
    t_ls_release(ls);
    return t_done();
}
