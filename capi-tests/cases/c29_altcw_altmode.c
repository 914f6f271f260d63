// LIB: both
// Spec 11.29 / 3.4: holder CW; request PR with LKF_ALTCW -> granted in CW with
// AST 0 and DLM_SBF_ALTMODE (a CW request by others is then still compatible,
// a PR request is not).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_CWMODE, 0, "ac", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_ALTCW, "ac", 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_ALTMODE) != 0, "sb_flags 0x%x lack DLM_SBF_ALTMODE",
          (unsigned char)a.lksb.sb_flags);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "ac"), 0);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "ac"), EAGAIN);
    t_ls_release(ls);
    return t_done();
}
