// LIB: both
// Spec 2.6 / 3.5: a conversion deadlock reported to a _wait call: libdlm
// returns 0 with sb_status EDEADLK; libdlm_lt returns -1 with errno EDEADLK.
// After the deadlocked lock is unlocked, the other conversion is granted.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    struct dlm_lksb b;
    int rv, e;

    t_enable_wait(ls);
    lk_init(&a, "A", 0);
    memset(&b, 0, sizeof b);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "wd", 0);
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_PRMODE, &b, 0, "wd", 2, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(b.sb_status, 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, LKF_CONVERT, "wd"));
    settle(T_NEG_MS);

    errno = 0;
    rv = dlm_ls_lock_wait(ls, LKM_EXMODE, &b, LKF_CONVERT, "wd", 2, 0, NULL, NULL, NULL);
    e = errno;
    CHECK_EQ(b.sb_status, EDEADLK);
#if T_LT
    CHECK(rv == -1 && e == EDEADLK, "lt: deadlocked lock_wait -> %d errno %s, expected -1/EDEADLK", rv, t_errname(e));
#else
    CHECK(rv == 0, "libdlm: deadlocked lock_wait -> %d errno %s, expected 0", rv, t_errname(e));
#endif
    CHECK_EQ(dlm_ls_unlock_wait(ls, b.sb_lkid, 0, &b), 0);
    CHECK_EQ(b.sb_status, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A's conversion not granted");
    CHECK_EQ(a.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
