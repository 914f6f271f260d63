// LIB: both
// Oracle 03 / spec 5.3: a lock requested without LKF_VALBLK leaves its
// sb_lvbptr buffer untouched even though the resource has a value.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, c;
    char pat[DLM_LVB_LEN];

    lk_init(&a, "A", 1);
    lk_init(&c, "C", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "nv", 0);
    strcpy(a.lvb, "value");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "nv", 0);
    memset(c.lvb, 0xCC, DLM_LVB_LEN);
    memset(pat, 0xCC, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &c, LKM_PRMODE, 0, "nv", 0);
    CHECK(memcmp(c.lvb, pat, DLM_LVB_LEN) == 0, "buffer of a lock without VALBLK was written");
    LOCK_EXPECT_NB(ls, &c, LKM_NLMODE, LKF_CONVERT, "nv", 0);
    CHECK(memcmp(c.lvb, pat, DLM_LVB_LEN) == 0, "buffer of a lock without VALBLK was written (convert)");
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    CHECK(memcmp(c.lvb, pat, DLM_LVB_LEN) == 0, "buffer of a lock without VALBLK was written (unlock)");
    t_ls_release(ls);
    return t_done();
}
