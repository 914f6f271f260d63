// LIB: both
// Oracle-checked (2026-12-05, see ORACLE-NOTES.md): a conversion PW->EX with
// LKF_ALTCW|LKF_VALBLK, blocked in EX by a CR holder, is granted in CW
// (DLM_SBF_ALTMODE), and like any conversion from PW to CW it writes the
// caller's value block: the next VALBLK reader gets that value, not the one
// written before.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk keep, a, b;

    lk_init(&keep, "K", 1);
    lk_init(&a, "A", 1);
    lk_init(&b, "B", 0);
    // K's NL keeps the resource, and its value block, to the end.
    LOCK_EXPECT_NB(ls, &keep, LKM_NLMODE, 0, "alt", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PWMODE, LKF_VALBLK, "alt", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    snprintf(a.lvb, DLM_LVB_LEN, "first value");
    LOCK_EXPECT_NB(ls, &a, LKM_PWMODE, LKF_CONVERT | LKF_VALBLK, "alt", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_CRMODE, 0, "alt", 0);
    memset(a.lvb, 0, DLM_LVB_LEN);
    snprintf(a.lvb, DLM_LVB_LEN, "second value");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK | LKF_ALTCW, "alt", 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_ALTMODE) != 0, "sb_flags 0x%x lack DLM_SBF_ALTMODE",
          (unsigned char)a.lksb.sb_flags);
    CHECK(strcmp(a.lvb, "second value") == 0, "A's buffer holds \"%.31s\"", a.lvb);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    memset(keep.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &keep, LKM_CRMODE, LKF_CONVERT | LKF_VALBLK, "alt", 0);
    CHECK(strcmp(keep.lvb, "second value") == 0, "K read \"%.31s\", expected \"second value\"",
          keep.lvb);
    CHECK_EQ((unsigned char)keep.lksb.sb_flags, 0);
    t_ls_release(ls);
    return t_done();
}
