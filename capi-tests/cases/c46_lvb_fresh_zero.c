// LIB: both
// Spec 11.46 / oracle 03: the first VALBLK grant on a fresh resource returns 32
// zero bytes (the caller's buffer is overwritten) without VALNOTVALID; also for
// NL.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, n;
    char zero[DLM_LVB_LEN];

    memset(zero, 0, sizeof zero);
    lk_init(&a, "A", 1);
    lk_init(&n, "N", 1);
    memset(a.lvb, 0xAA, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l46", 0);
    CHECK(memcmp(a.lvb, zero, DLM_LVB_LEN) == 0, "fresh LVB not zero (first byte 0x%02x)", (unsigned char)a.lvb[0]);
    CHECK_EQ((unsigned char)a.lksb.sb_flags, 0);

    memset(n.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "l46b", 0);
    CHECK(memcmp(n.lvb, zero, DLM_LVB_LEN) == 0, "fresh LVB (NL) not zero (first byte 0x%02x)", (unsigned char)n.lvb[0]);
    CHECK_EQ((unsigned char)n.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
