// LIB: both
// Oracle-checked (2026-12-05): which VALBLK conversions read the value
// block, which write it, and which do neither. PR->NL and CR->NL neither
// read nor write (the caller's buffer keeps what the caller put there, and
// the stored value is unchanged); CR->CR and NL->PR read; PW->CR writes.
#include "../common.h"

/* what the caller puts in its value block before the next call */
static void put(struct lk *l, const char *value)
{
    memset(l->lvb, 0, DLM_LVB_LEN);
    strcpy(l->lvb, value);
}

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "tab", 0);
    put(&a, "V1");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    put(&a, "junk");
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(a.lvb, "V1") == 0, "NL->PR read \"%.31s\", expected \"V1\"", a.lvb);
    put(&a, "GARBAGE");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(a.lvb, "GARBAGE") == 0, "PR->NL left \"%.31s\" in the buffer", a.lvb);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "tab", 0);
    CHECK(strcmp(b.lvb, "V1") == 0, "after PR->NL, B read \"%.31s\", expected \"V1\"", b.lvb);
    LOCK_EXPECT_NB(ls, &a, LKM_CRMODE, LKF_CONVERT, "tab", 0);
    put(&a, "junk");
    LOCK_EXPECT_NB(ls, &a, LKM_CRMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(a.lvb, "V1") == 0, "CR->CR read \"%.31s\", expected \"V1\"", a.lvb);
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, LKF_CONVERT, "tab", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PWMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    put(&a, "W2");
    LOCK_EXPECT_NB(ls, &a, LKM_CRMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    put(&b, "");
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(b.lvb, "W2") == 0, "after PW->CR, B read \"%.31s\", expected \"W2\"", b.lvb);
    put(&a, "W3");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(a.lvb, "W3") == 0, "CR->NL left \"%.31s\" in the buffer", a.lvb);
    put(&b, "");
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "tab", 0);
    CHECK(strcmp(b.lvb, "W2") == 0, "after CR->NL, B read \"%.31s\", expected \"W2\"", b.lvb);
    t_ls_release(ls);
    return t_done();
}
