// LIB: both
// Oracle 03 / spec 5.2: every grant or conversion with VALBLK reads the
// resource LVB, even NL->NL and NL->CR.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk n, a;

    lk_init(&n, "N", 1);
    lk_init(&a, "A", 1);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_VALBLK, "nn", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "nn", 0);
    strcpy(a.lvb, "value-v5");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "nn", 0);
    memset(n.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &n, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "nn", 0);
    CHECK(strcmp(n.lvb, "value-v5") == 0, "NL->NL|VALBLK read \"%.31s\"", n.lvb);
    memset(n.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &n, LKM_CRMODE, LKF_CONVERT | LKF_VALBLK, "nn", 0);
    CHECK(strcmp(n.lvb, "value-v5") == 0, "NL->CR|VALBLK read \"%.31s\"", n.lvb);
    t_ls_release(ls);
    return t_done();
}
