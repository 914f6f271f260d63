// LIB: both
// Spec 11.68: a conversion without VALBLK on a lock that used VALBLK before:
// the reference copies zeros into *sb_lvbptr, the recommended drop-in leaves
// the buffer untouched -> accept either, but nothing else.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    char zero[DLM_LVB_LEN], pat[DLM_LVB_LEN];

    memset(zero, 0, sizeof zero);
    memset(pat, 0x33, sizeof pat);
    lk_init(&a, "A", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l68", 0);
    strcpy(a.lvb, "some-value");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "l68", 0);
    memset(a.lvb, 0x33, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT, "l68", 0);
    CHECK(memcmp(a.lvb, pat, DLM_LVB_LEN) == 0 || memcmp(a.lvb, zero, DLM_LVB_LEN) == 0,
          "buffer after a conversion without VALBLK is neither untouched nor zero (0x%02x 0x%02x ...)",
          (unsigned char)a.lvb[0], (unsigned char)a.lvb[1]);
    t_ls_release(ls);
    return t_done();
}
