// LIB: both
// Spec 11.44: an EX->EX conversion with VALBLK writes the new value without
// changing the mode (a NL lock reading with NL->NL|VALBLK sees it; the EX is
// still held).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "l44", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l44", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    strcpy(a.lvb, "ex-ex-value");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "l44", 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "l44"), EAGAIN);

    memset(n.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "l44", 0);
    CHECK(strcmp(n.lvb, "ex-ex-value") == 0, "NL reader got \"%.31s\"", n.lvb);
    CHECK_EQ((unsigned char)n.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
