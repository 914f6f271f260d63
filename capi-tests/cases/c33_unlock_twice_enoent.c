// LIB: both
// Spec 11.33: unlocking the same lock twice -> the second call -1/ENOENT (no
// other lock is created in between, so the id cannot have been reused).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    struct dlm_lksb s;
    uint32_t id;

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "u", 0);
    id = a.lksb.sb_lkid;
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_unlock(ls, id, 0, &s, NULL), ENOENT);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_FORCEUNLOCK, &s, NULL), ENOENT);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_CANCEL, &s, NULL), ENOENT);
    settle(T_NEG_MS);
    CHECK_EQ(rec_count(), 2);
    t_ls_release(ls);
    return t_done();
}
