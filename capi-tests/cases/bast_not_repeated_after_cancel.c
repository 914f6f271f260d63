// LIB: both
// Oracle 02 steps 4-5 / spec 4.3: A and B hold PR; A's queued PR->EX conversion
// BASTs B; A cancels (ECANCEL) and converts again -> B gets no second BAST
// (it was not re-granted in between); B unlocks -> A is granted EX.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "nr", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "nr", 0);
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, LKF_CONVERT, "nr"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "no BAST for B");
    REQUIRE_OK(t_unlock(ls, &a, LKF_CANCEL));
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(a.lksb.sb_status, ECANCEL);
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, LKF_CONVERT, "nr"));
    settle(2 * T_NEG_MS);
    CHECK_EQ(lk_basts(&b), 1);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_SEQ(rec_str_filter(0, EV_ANY, "B"), "ast:B:0 bast:B ast:B:EUNLOCK");
    t_ls_release(ls);
    return t_done();
}
