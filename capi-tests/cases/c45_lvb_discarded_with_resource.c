// LIB: both
// Spec 11.45 / 5.1 / oracle 03 part 2: A writes a value (EX->NL|VALBLK) and
// then unlocks; no other lock exists, so the LVB is discarded with the
// resource: a new PR|VALBLK sees 32 zero bytes and no VALNOTVALID.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    char zero[DLM_LVB_LEN];

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    memset(zero, 0, sizeof zero);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l45", 0);
    strcpy(a.lvb, "survives?");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "l45", 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);

    memset(b.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "l45", 0);
    CHECK(memcmp(b.lvb, zero, DLM_LVB_LEN) == 0, "LVB survived the resource: \"%.31s\"", b.lvb);
    CHECK_EQ((unsigned char)b.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
