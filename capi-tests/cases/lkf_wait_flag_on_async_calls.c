// LIB: both
// Spec 2.6: LKF_WAIT (0x80000000, library-only) on dlm_ls_lock / dlm_ls_unlock
// makes them synchronous exactly like the _wait variants: the call returns
// with the final status already in the lksb (threaded libdlm: 0 even for a
// NOQUEUE failure; lt: -1/EAGAIN), and the flag never reaches the lock manager
// as an unknown flag.
#include "../common.h"

#ifndef LKF_WAIT
#error "libdlm.h does not define LKF_WAIT"
#endif

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct dlm_lksb a, b;
    int rv, e;

    t_enable_wait(ls);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rv = dlm_ls_lock(ls, LKM_EXMODE, &a, LKF_WAIT, "lw", 2, 0, rec_ast, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, 0);
    CHECK(a.sb_lkid != 0, "no lock id");

    errno = 0;
    rv = dlm_ls_lock(ls, LKM_EXMODE, &b, LKF_WAIT | LKF_NOQUEUE, "lw", 2, 0, rec_ast, NULL, NULL, NULL);
    e = errno;
    CHECK_EQ(b.sb_status, EAGAIN);
#if T_LT
    CHECK(rv == -1 && e == EAGAIN, "lt: LKF_WAIT|NOQUEUE conflict -> %d errno %s", rv, t_errname(e));
#else
    CHECK(rv == 0, "libdlm: LKF_WAIT|NOQUEUE conflict -> %d errno %s", rv, t_errname(e));
#endif

    rv = dlm_ls_unlock(ls, a.sb_lkid, LKF_WAIT, &a, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
