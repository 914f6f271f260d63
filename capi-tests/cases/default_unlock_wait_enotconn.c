// LIB: both
// Spec 2.7: dlm_unlock_wait never opens the default lockspace: called before
// any default-lockspace use it fails with -1/ENOTCONN.
#include "../common.h"

int main(void)
{
    T_INIT();
    struct dlm_lksb s;

    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_unlock_wait(1, 0, &s), ENOTCONN);
    CHECK_FAIL(dlm_unlock_wait(5, LKF_CANCEL, &s), ENOTCONN);
    CHECK_FAIL(dlm_unlock(5, 0, &s, NULL), ENOTCONN);
    return t_done();
}
