// LIB: both
// udlm extension (include/udlm.h): a cycle of waits between two handles on
// two resources — A holds R1 and waits for R2, B holds R2 and waits for R1 —
// is found and broken: the request of the handle opened last (B) ends with
// EDEADLK, its id dies, A's request goes on waiting and is granted once B
// lets R2 go. The kernel would leave both waiting forever.
#include "../common.h"
#include "../../include/udlm.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t a = t_ls_create();
    dlm_lshandle_t b = t_ls_open();
    struct lk a1, b2, a2, b1;
    long long t0, dt;

    lk_init(&a1, "A1", 0);
    lk_init(&b2, "B2", 0);
    lk_init(&a2, "A2", 0);
    lk_init(&b1, "B1", 0);
    LOCK_EXPECT_NB(a, &a1, LKM_EXMODE, 0, "R1", 0);
    LOCK_EXPECT_NB(b, &b2, LKM_EXMODE, 0, "R2", 0);
    CHECK_OK(t_lock_nb(a, &a2, LKM_EXMODE, 0, "R2"));
    t0 = t_now_ms();
    CHECK_OK(t_lock_nb(b, &b1, LKM_EXMODE, 0, "R1"));
    CHECK(lk_wait(&b1, 3 * t_deadlock_detect_ms() + 3000), "the deadlock was not broken");
    dt = t_now_ms() - t0;
    printf("  cycle broken after %lld ms\n", dt);
    CHECK_EQ(b1.lksb.sb_status, EDEADLK);
    CHECK_FAIL(dlm_ls_unlock(b, b1.lksb.sb_lkid, 0, &b1.lksb, &b1), ENOENT);
    /* A still waits */
    settle(200);
    CHECK_EQ(lk_asts(&a2), 0);
    CHECK_EQ(a2.lksb.sb_status, EINPROG);
    UNLOCK_EXPECT(b, &b2, 0, EUNLOCK);
    CHECK(lk_wait(&a2, T_POS_MS), "A2 not granted after B left R2");
    CHECK_EQ(a2.lksb.sb_status, 0);
    UNLOCK_EXPECT(a, &a2, 0, EUNLOCK);
    UNLOCK_EXPECT(a, &a1, 0, EUNLOCK);
    dlm_close_lockspace(b);
    t_forget_handle(b);
    t_ls_release(a);
    return t_done();
}
