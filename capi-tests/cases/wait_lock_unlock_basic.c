// LIB: both
// Spec 2.6: dlm_ls_lock_wait of a free resource returns 0 with sb_status 0 and
// a lock id; dlm_ls_unlock_wait returns 0 with sb_status EUNLOCK (in both
// libraries: EUNLOCK is not an error for the lt return value).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct dlm_lksb a;
    char lvb[DLM_LVB_LEN];
    int rv;

    t_enable_wait(ls);
    memset(&a, 0, sizeof a);
    memset(lvb, 0xEE, sizeof lvb);
    a.sb_lvbptr = lvb;
    rv = dlm_ls_lock_wait(ls, LKM_PWMODE, &a, LKF_VALBLK, "wb", 2, 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, 0);
    CHECK(a.sb_lkid != 0, "no lock id");
    CHECK(lvb[0] == 0 && lvb[31] == 0, "fresh LVB not zeroed by the _wait grant");
    rv = dlm_ls_lock_wait(ls, LKM_NLMODE, &a, LKF_CONVERT, "wb", 2, 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, 0);
    rv = dlm_ls_unlock_wait(ls, a.sb_lkid, 0, &a);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
