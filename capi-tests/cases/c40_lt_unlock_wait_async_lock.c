// LIB: lt
// Spec 11.40 / 2.6: in libdlm_lt, dlm_ls_unlock_wait on a lock obtained with
// async dlm_ls_lock returns 0 (final status EUNLOCK), and the lock's own AST
// routine is called for the unlock with its original argument.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    int rv;

    lk_init(&a, "A", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "lw", 0);
    rv = dlm_ls_unlock_wait(ls, a.lksb.sb_lkid, 0, &a.lksb);
    CHECK_EQ(rv, 0);
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:A:0 ast:A:EUNLOCK");
    t_ls_release(ls);
    return t_done();
}
