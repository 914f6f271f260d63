// LIB: both
// Spec 11.43 / 5.2: PR->NL with VALBLK does not write the LVB; NL->PR with
// VALBLK reads the current value.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a, b, c;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    lk_init(&c, "C", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "l43", 0);   /* keeps the resource */
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l43", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    strcpy(a.lvb, "value-1");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "l43", 0);

    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "l43", 0);
    CHECK(strcmp(b.lvb, "value-1") == 0, "B read \"%.31s\"", b.lvb);
    memset(b.lvb, 0, DLM_LVB_LEN);
    strcpy(b.lvb, "written-by-PR");
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "l43", 0);

    memset(c.lvb, 0x11, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &c, LKM_PRMODE, LKF_VALBLK, "l43", 0);
    CHECK(strcmp(c.lvb, "value-1") == 0, "after PR->NL|VALBLK the LVB is \"%.31s\", expected \"value-1\"", c.lvb);

    /* NL->PR with VALBLK reads */
    memset(b.lvb, 0x22, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "l43", 0);
    CHECK(strcmp(b.lvb, "value-1") == 0, "NL->PR|VALBLK read \"%.31s\"", b.lvb);
    CHECK_EQ((unsigned char)b.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
