// LIB: both
// Spec 11.47 (last sentence) / 5.4: IVVALBLK on a resource that has no stored
// value (nobody wrote one) -> a later VALBLK read does not report VALNOTVALID
// and returns zeros.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    char zero[DLM_LVB_LEN];

    memset(zero, 0, sizeof zero);
    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l47b", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_IVVALBLK, "l47b", 0);
    memset(b.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "l47b", 0);
    CHECK_EQ((unsigned char)b.lksb.sb_flags, 0);
    CHECK(memcmp(b.lvb, zero, DLM_LVB_LEN) == 0, "B read non-zero LVB (first byte 0x%02x)", (unsigned char)b.lvb[0]);
    t_ls_release(ls);
    return t_done();
}
