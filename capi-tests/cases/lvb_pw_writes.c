// LIB: both
// Spec 5.2: a down-conversion from PW with VALBLK writes the LVB (PW->NL and
// PW->CR); CR->NL with VALBLK does not.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a, r;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    lk_init(&r, "R", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "pw", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PWMODE, LKF_VALBLK, "pw", 0);
    strcpy(a.lvb, "pw-value-1");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "pw", 0);
    LOCK_EXPECT_NB(ls, &r, LKM_PRMODE, LKF_VALBLK, "pw", 0);
    CHECK(strcmp(r.lvb, "pw-value-1") == 0, "read \"%.31s\" after PW->NL", r.lvb);
    UNLOCK_EXPECT(ls, &r, 0, EUNLOCK);

    LOCK_EXPECT_NB(ls, &a, LKM_PWMODE, LKF_CONVERT | LKF_VALBLK, "pw", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    strcpy(a.lvb, "pw-value-2");
    LOCK_EXPECT_NB(ls, &a, LKM_CRMODE, LKF_CONVERT | LKF_VALBLK, "pw", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    strcpy(a.lvb, "cr-value-3");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "pw", 0);
    lk_init(&r, "R2", 1);
    LOCK_EXPECT_NB(ls, &r, LKM_PRMODE, LKF_VALBLK, "pw", 0);
    CHECK(strcmp(r.lvb, "pw-value-2") == 0, "read \"%.31s\", expected the PW->CR value", r.lvb);
    t_ls_release(ls);
    return t_done();
}
