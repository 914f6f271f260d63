// LIB: both
// Spec 3.1: PR and CW are incompatible although neither is above the other; a
// PR->CW conversion is not a down-conversion: with another PR holder it waits
// (the holder gets a BAST) and is granted when that holder leaves.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "mid", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "mid", 0);
    REQUIRE_OK(t_lock(ls, &a, LKM_CWMODE, LKF_CONVERT, "mid"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "PR holder got no BAST for the PR->CW conversion");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&a), 1);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "PR->CW conversion not granted");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "mid"), 0);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "mid"), EAGAIN);
    t_ls_release(ls);
    return t_done();
}
