// LIB: both
// Spec 3.4: an alternate mode is retried at every later grant attempt: H holds
// EX, A requests CW|ALTPR and waits; H converts EX->PR -> CW still conflicts
// with PR but the alternate PR fits: A is granted in PR with DLM_SBF_ALTMODE.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "alt", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_CWMODE, LKF_ALTPR, "alt"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&a) == 0, "A granted against EX");
    LOCK_EXPECT_NB(ls, &h, LKM_PRMODE, LKF_CONVERT, "alt", 0);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted in its alternate mode");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_ALTMODE) != 0, "sb_flags 0x%x lack ALTMODE", (unsigned char)a.lksb.sb_flags);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "alt"), EAGAIN);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "alt"), 0);
    t_ls_release(ls);
    return t_done();
}
