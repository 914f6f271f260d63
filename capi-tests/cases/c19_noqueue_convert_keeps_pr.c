// LIB: both
// Spec 11.19: NOQUEUE conversion PR->EX against another PR holder -> AST 11;
// the lock is still PR: another PR request succeeds, EX/CW NOQUEUE requests by
// a third party fail; the lock can still be converted and unlocked.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, 0, "p", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "p", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE, "p", EAGAIN);

    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "p"), 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "p"), EAGAIN);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    /* only A (PR) is left: CW conflicts with PR, CR does not */
    CHECK_EQ(t_probe(ls, LKM_CWMODE, 0, "p"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "p"), 0);

    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE, "p", 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
