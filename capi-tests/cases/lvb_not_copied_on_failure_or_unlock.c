// LIB: both
// Spec 5.3: no LVB is copied to the caller's buffer for failed completions
// (NOQUEUE EAGAIN) or for EUNLOCK / ECANCEL completions.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, w;
    char pat[DLM_LVB_LEN];

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 1);
    lk_init(&w, "W", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "nc", 0);
    strcpy(a.lvb, "the-value");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "nc", 0);

    memset(b.lvb, 0x5A, DLM_LVB_LEN);
    memset(pat, 0x5A, DLM_LVB_LEN);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK | LKF_NOQUEUE, "nc", EAGAIN);
    CHECK(memcmp(b.lvb, pat, DLM_LVB_LEN) == 0, "buffer written by a failed NOQUEUE request");

    memset(w.lvb, 0x5A, DLM_LVB_LEN);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_PRMODE, LKF_VALBLK, "nc"));
    settle(T_NEG_MS);
    REQUIRE_OK(t_unlock(ls, &w, LKF_CANCEL));
    CHECK(lk_wait(&w, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(w.lksb.sb_status, ECANCEL);
    CHECK(memcmp(w.lvb, pat, DLM_LVB_LEN) == 0, "buffer written by an ECANCEL completion");

    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "nc", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "nc", 0);
    CHECK(strcmp(b.lvb, "the-value") == 0, "B read \"%.31s\"", b.lvb);
    memset(b.lvb, 0x5A, DLM_LVB_LEN);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(memcmp(b.lvb, pat, DLM_LVB_LEN) == 0, "buffer written by an EUNLOCK completion");
    t_ls_release(ls);
    return t_done();
}
