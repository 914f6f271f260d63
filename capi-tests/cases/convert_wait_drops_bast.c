// LIB: both
// Spec 2.4 / 2.6 / oracle 05 c: a lock requested with a BAST routine and then
// converted through dlm_ls_lock_wait (which passes no BAST routine) gets no
// BAST any more; it can then be released with dlm_ls_unlock_wait (0, EUNLOCK).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    int rv;

    t_enable_wait(ls);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "wz", 0);
    rv = dlm_ls_lock_wait(ls, LKM_PRMODE, &a.lksb, LKF_CONVERT, "wz", 2, 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.lksb.sb_status, 0);
    REQUIRE_OK(t_lock(ls, &b, LKM_EXMODE, 0, "wz"));
    settle(3 * T_NEG_MS);
    CHECK_EQ(lk_basts(&a), 0);
    CHECK_EQ(lk_asts(&b), 0);
    rv = dlm_ls_unlock_wait(ls, a.lksb.sb_lkid, 0, &a.lksb);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted");
    CHECK_EQ(b.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
