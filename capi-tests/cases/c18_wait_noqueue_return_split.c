// LIB: both
// Spec 11.18 / 2.6: dlm_ls_lock_wait with a NOQUEUE conflict: the threaded
// libdlm returns 0 and leaves EAGAIN in sb_status; libdlm_lt returns -1 with
// errno EAGAIN (and sb_status EAGAIN). A successful _wait returns 0 in both.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct dlm_lksb a, b;
    int rv, e;

    t_enable_wait(ls);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rv = dlm_ls_lock_wait(ls, LKM_EXMODE, &a, 0, "w", 1, 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, 0);
    CHECK(a.sb_lkid != 0, "no lock id");

    errno = 0;
    rv = dlm_ls_lock_wait(ls, LKM_EXMODE, &b, LKF_NOQUEUE, "w", 1, 0, NULL, NULL, NULL);
    e = errno;
    CHECK_EQ(b.sb_status, EAGAIN);
#if T_LT
    CHECK(rv == -1 && e == EAGAIN, "lt: lock_wait NOQUEUE conflict -> %d errno %s, expected -1/EAGAIN", rv, t_errname(e));
#else
    CHECK(rv == 0, "libdlm: lock_wait NOQUEUE conflict -> %d errno %s, expected 0", rv, t_errname(e));
#endif
    rv = dlm_ls_unlock_wait(ls, a.sb_lkid, 0, &a);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
