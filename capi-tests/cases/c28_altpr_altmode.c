// LIB: both
// Spec 11.28 / 3.4: holder PR; request CW with LKF_ALTPR -> granted in PR with
// AST 0 and DLM_SBF_ALTMODE; then an EX NOQUEUE request fails and a PR request
// succeeds (the lock really is PR).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_PRMODE, 0, "ap", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_CWMODE, LKF_ALTPR, "ap", 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_ALTMODE) != 0, "sb_flags 0x%x lack DLM_SBF_ALTMODE",
          (unsigned char)a.lksb.sb_flags);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "ap"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "ap"), 0);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    /* only A is left: PR still compatible, CW is not */
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "ap"), 0);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "ap"), EAGAIN);
    t_ls_release(ls);
    return t_done();
}
