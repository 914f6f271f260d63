// LIB: both
// Spec 11.57 / 2.4: a conversion with a NULL bastaddr on a lock that had a BAST
// routine turns BASTs off for that lock.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT(ls, &h, LKM_EXMODE, 0, "nbc", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, LKF_CONVERT, "nbc", 0);
    REQUIRE_OK(t_lock(ls, &w, LKM_PRMODE, 0, "nbc"));
    settle(2 * T_NEG_MS);
    CHECK_EQ(lk_basts(&h), 0);
    CHECK_SEQ(rec_str(), "ast:H:0 ast:H:0");
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted");
    t_ls_release(ls);
    return t_done();
}
