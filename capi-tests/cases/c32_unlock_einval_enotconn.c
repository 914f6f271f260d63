// LIB: both
// Spec 11.32 / 2.13: dlm_unlock before any use of the default lockspace ->
// -1/ENOTCONN (it does not open it); dlm_ls_unlock with a NULL handle ->
// -1/ENOTCONN; dlm_ls_unlock with lkid 0 -> -1/EINVAL.
#include "../common.h"

int main(void)
{
    T_INIT();
    struct dlm_lksb s;
    dlm_lshandle_t ls;

    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_unlock(1, 0, &s, NULL), ENOTCONN);
    CHECK_FAIL(dlm_ls_unlock(NULL, 1, 0, &s, NULL), ENOTCONN);

    ls = t_ls_create();
    CHECK_FAIL(dlm_ls_unlock(ls, 0, 0, &s, NULL), EINVAL);
    CHECK_FAIL(dlm_ls_unlock(ls, 0, LKF_CANCEL, &s, NULL), EINVAL);
    CHECK(!wait_readable(dlm_ls_get_fd(ls), T_NEG_MS), "AST queued for a rejected unlock");
    t_ls_release(ls);
    /* still no default lockspace */
    CHECK_FAIL(dlm_unlock(1, 0, &s, NULL), ENOTCONN);
    return t_done();
}
