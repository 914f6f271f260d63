// LIB: both
// udlm extension (include/udlm.h): a cycle through a conversion. A and B
// hold R1 in PR; B holds R2 in EX; A asks for R2 (waits for B); B converts R1
// to EX (waits for A's PR). B, the handle opened last, is the victim: its
// conversion ends with EDEADLK and B keeps R1 in PR. With LKF_NODLCKWT on
// B's conversion the same cycle is left alone.
#include "../common.h"
#include "../../include/udlm.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t a = t_ls_create();
    dlm_lshandle_t b = t_ls_open();
    struct lk a1, b1, b2, a2;

    lk_init(&a1, "A1", 0);
    lk_init(&b1, "B1", 0);
    lk_init(&b2, "B2", 0);
    lk_init(&a2, "A2", 0);
    LOCK_EXPECT_NB(a, &a1, LKM_PRMODE, 0, "R1", 0);
    LOCK_EXPECT_NB(b, &b1, LKM_PRMODE, 0, "R1", 0);
    LOCK_EXPECT_NB(b, &b2, LKM_EXMODE, 0, "R2", 0);
    CHECK_OK(t_lock_nb(a, &a2, LKM_EXMODE, 0, "R2"));

    /* NODLCKWT: not counted as waiting, so no cycle */
    CHECK_OK(t_lock_nb(b, &b1, LKM_EXMODE, LKF_CONVERT | LKF_NODLCKWT, "R1"));
    settle(2 * t_deadlock_detect_ms() + 500 < 4000 ? 2 * t_deadlock_detect_ms() + 500 : 4000);
    CHECK_EQ(lk_asts(&b1), 1);
    CHECK_EQ(lk_asts(&a2), 0);
    /* take the conversion back, then make it again without the flag */
    UNLOCK_EXPECT(b, &b1, LKF_CANCEL, ECANCEL);
    CHECK_OK(t_lock_nb(b, &b1, LKM_EXMODE, LKF_CONVERT, "R1"));
    CHECK(lk_wait(&b1, 3 * t_deadlock_detect_ms() + 3000), "the deadlock was not broken");
    CHECK_EQ(b1.lksb.sb_status, EDEADLK);
    CHECK_EQ(lk_asts(&a2), 0);
    /* B still holds R1 in PR: a PR probe passes, an EX probe does not */
    CHECK_EQ(t_probe(a, LKM_PRMODE, 0, "R1"), 0);
    CHECK_EQ(t_probe(a, LKM_EXMODE, 0, "R1"), EAGAIN);
    UNLOCK_EXPECT(b, &b2, 0, EUNLOCK);
    CHECK(lk_wait(&a2, T_POS_MS), "A2 not granted");
    CHECK_EQ(a2.lksb.sb_status, 0);
    UNLOCK_EXPECT(b, &b1, 0, EUNLOCK);
    UNLOCK_EXPECT(a, &a2, 0, EUNLOCK);
    UNLOCK_EXPECT(a, &a1, 0, EUNLOCK);
    dlm_close_lockspace(b);
    t_forget_handle(b);
    t_ls_release(a);
    return t_done();
}
