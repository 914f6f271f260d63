// LIB: both
// Spec 11.34 / 2.5: unlock flags outside CANCEL|VALBLK|IVVALBLK|FORCEUNLOCK ->
// -1/EINVAL (CONVERT, NOQUEUE, PERSISTENT); CANCEL|FORCEUNLOCK -> -1/EINVAL.
// No AST is generated and the lock stays intact.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    struct dlm_lksb s;
    uint32_t id;

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "bf", 0);
    id = a.lksb.sb_lkid;
    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_CONVERT, &s, NULL), EINVAL);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_CANCEL | LKF_FORCEUNLOCK, &s, NULL), EINVAL);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_NOQUEUE, &s, NULL), EINVAL);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_PERSISTENT, &s, NULL), EINVAL);
    settle(T_NEG_MS);
    CHECK_EQ(rec_count(), 1);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "bf"), EAGAIN);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "bf"), 0);
    t_ls_release(ls);
    return t_done();
}
