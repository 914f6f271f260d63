// LIB: both
// Spec 11.5: NULL astaddr -> -1/EINVAL. NULL bastaddr -> success, and the
// holder never gets a BAST even when another request is blocked by it.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, h, w;

    lk_init(&a, "A", 0);
    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_EXMODE, &a.lksb, 0, "r", 1, 0, NULL, &a, rec_bast, NULL), EINVAL);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &a.lksb, 0, "r", 1, 0, NULL, NULL, NULL, NULL), EINVAL);

    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "r", 0);
    REQUIRE_OK(t_lock(ls, &w, LKM_EXMODE, 0, "r"));
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:H:0");

    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "waiter not granted after the holder unlocked");
    CHECK_EQ(w.lksb.sb_status, 0);
    settle(50);
    CHECK_SEQ(rec_str(), "ast:H:0 ast:H:EUNLOCK ast:W:0");
    t_ls_release(ls);
    return t_done();
}
