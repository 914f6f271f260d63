// LIB: both
// Spec 11.42 / oracle 03: A takes EX|VALBLK and writes a value by converting
// EX->NL with VALBLK; B requests PR|VALBLK -> AST 0, B's buffer holds exactly
// A's 32 bytes, sb_flags 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    char want[DLM_LVB_LEN];

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "lvb", 0);
    memset(want, 0, sizeof want);
    snprintf(want, sizeof want, "X-value-from-A");
    want[31] = 'Z';
    memcpy(a.lvb, want, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "lvb", 0);

    memset(b.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "lvb", 0);
    CHECK(memcmp(b.lvb, want, DLM_LVB_LEN) == 0, "B read \"%.31s\", expected \"%s\"", b.lvb, want);
    CHECK_EQ((unsigned char)b.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
