// LIB: both
// Spec 11.47 / 5.4 / oracle 03: A (EX|VALBLK) stores a value (EX->EX|VALBLK),
// then converts to NL with LKF_IVVALBLK -> the next VALBLK grants (B's PR and
// A's own NL->EX) carry DLM_SBF_VALNOTVALID, with the old data still
// delivered; after A writes again (EX->NL|VALBLK) later grants no longer carry
// the flag.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    lk_init(&c, "C", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "l47", 0);
    strcpy(a.lvb, "stored-v1");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "l47", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_IVVALBLK, "l47", 0);

    memset(b.lvb, 0xEE, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "l47", 0);
    CHECK((b.lksb.sb_flags & DLM_SBF_VALNOTVALID) != 0, "B's sb_flags 0x%x lack VALNOTVALID",
          (unsigned char)b.lksb.sb_flags);
    CHECK(strcmp(b.lvb, "stored-v1") == 0, "B read \"%.31s\", expected the old value", b.lvb);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);

    memset(a.lvb, 0x22, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "l47", 0);
    CHECK((a.lksb.sb_flags & DLM_SBF_VALNOTVALID) != 0, "A's NL->EX sb_flags 0x%x lack VALNOTVALID",
          (unsigned char)a.lksb.sb_flags);
    memset(a.lvb, 0, DLM_LVB_LEN);
    strcpy(a.lvb, "stored-v2");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "l47", 0);

    LOCK_EXPECT_NB(ls, &c, LKM_PRMODE, LKF_VALBLK, "l47", 0);
    CHECK_EQ((unsigned char)c.lksb.sb_flags, 0);
    CHECK(strcmp(c.lvb, "stored-v2") == 0, "C read \"%.31s\"", c.lvb);
    t_ls_release(ls);
    return t_done();
}
