// LIB: dlm
// Spec 11.63 / 2.7: unlock_resource with no default lockspace -> -1 with errno
// -107 (reference quirk); lock_resource with a NULL lockid -> -1/EINVAL;
// lock_resource(name, EX, 0, &id) -> 0 with errno 0 and id != 0; a NOQUEUE
// conflict -> -1 with errno EAGAIN; unlock_resource(id) -> 0 with errno
// 65538 (EUNLOCK).
#include "../common.h"

int main(void)
{
    T_INIT();
    char name[64];
    int id = 0, id2 = 0, rv, e;

    snprintf(name, sizeof name, "t_c63_%d", (int)getpid());
    errno = 0;
    rv = unlock_resource(1);
    e = errno;
    CHECK(rv == -1 && e == -107, "unlock_resource without default lockspace -> %d errno %d, expected -1 errno -107", rv, e);

    CHECK_FAIL(lock_resource(name, LKM_EXMODE, 0, NULL), EINVAL);

    errno = 1234;
    rv = lock_resource(name, LKM_EXMODE, 0, &id);
    e = errno;
    CHECK(rv == 0 && e == 0, "lock_resource -> %d errno %d, expected 0 errno 0", rv, e);
    CHECK(id != 0, "lock id 0");

    errno = 0;
    rv = lock_resource(name, LKM_EXMODE, LKF_NOQUEUE, &id2);
    e = errno;
    CHECK(rv == -1 && e == EAGAIN, "NOQUEUE conflict -> %d errno %d, expected -1/EAGAIN", rv, e);

    errno = 0;
    rv = unlock_resource(id);
    e = errno;
    CHECK(rv == 0 && e == EUNLOCK, "unlock_resource -> %d errno %d, expected 0 errno %d", rv, e, EUNLOCK);

    /* the resource is free again */
    errno = 1234;
    rv = lock_resource(name, LKM_EXMODE, LKF_NOQUEUE, &id2);
    CHECK(rv == 0 && errno == 0, "re-lock -> %d errno %d", rv, errno);
    if (rv == 0) CHECK_EQ(unlock_resource(id2), 0);
    return t_done();
}
