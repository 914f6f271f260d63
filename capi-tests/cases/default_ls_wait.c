// LIB: both
// Spec 2.6 / 2.7: dlm_lock_wait / dlm_unlock_wait on the default lockspace:
// grant -> 0/status 0; NOQUEUE conflict -> libdlm 0 with status EAGAIN, lt -1
// with errno EAGAIN; unlock -> 0 with status EUNLOCK. (Threaded build: the
// default lockspace's AST thread is started with dlm_pthread_init.)
#include "../common.h"

int main(void)
{
    T_INIT();
    struct dlm_lksb a, b;
    char name[48];
    int rv, e;

    snprintf(name, sizeof name, "t_default_wait_%d", (int)getpid());
#if T_THREADED
    REQUIRE_OK(dlm_pthread_init());
#endif
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rv = dlm_lock_wait(LKM_EXMODE, &a, 0, name, (unsigned)strlen(name), 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, 0);
    CHECK(a.sb_lkid != 0, "no lock id");

    errno = 0;
    rv = dlm_lock_wait(LKM_EXMODE, &b, LKF_NOQUEUE, name, (unsigned)strlen(name), 0, NULL, NULL, NULL);
    e = errno;
    CHECK_EQ(b.sb_status, EAGAIN);
#if T_LT
    CHECK(rv == -1 && e == EAGAIN, "lt: dlm_lock_wait conflict -> %d errno %s", rv, t_errname(e));
#else
    CHECK(rv == 0, "libdlm: dlm_lock_wait conflict -> %d errno %s", rv, t_errname(e));
#endif
    rv = dlm_unlock_wait(a.sb_lkid, 0, &a);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.sb_status, EUNLOCK);
#if T_THREADED
    CHECK_EQ(dlm_pthread_cleanup(), 0);
#endif
    return t_done();
}
