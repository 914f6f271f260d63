// LIB: both
// Spec 2.3 item 5: sb_flags is reset for each new operation: a grant with
// DLM_SBF_ALTMODE is followed by a conversion whose AST carries sb_flags 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_PRMODE, 0, "fr", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_CWMODE, LKF_ALTPR, "fr", 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_ALTMODE) != 0, "no ALTMODE on the alternate grant");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT, "fr", 0);
    CHECK_EQ((unsigned char)a.lksb.sb_flags, 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK_EQ((unsigned char)a.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
