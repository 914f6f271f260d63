// LIB: both
// udlm extension (include/udlm.h): in a lockspace created with
// UDLM_LSFL_TIMEOUT, a request made by dlm_ls_lockx with LKF_TIMEOUT that is
// not granted within its timeout ends with ETIMEDOUT and its lock id dies; a
// request granted before its timeout keeps its lock; without LKF_TIMEOUT a
// request waits as long as it must.
#include "../common.h"
#include "../../include/udlm.h"

static int lockx(dlm_lshandle_t ls, struct lk *l, int mode, uint32_t flags, const char *res,
                 uint64_t *timeout)
{
    uint64_t xid = 7;
    l->lksb.sb_lkid = 0;
    l->expect = lk_asts(l) + 1;
    return dlm_ls_lockx(ls, (uint32_t)mode, &l->lksb, flags, res, (unsigned)strlen(res), 0,
                        rec_ast, l, NULL, &xid, timeout);
}

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create_flags(NULL, UDLM_LSFL_TIMEOUT);
    struct lk h, w, g, n;
    uint64_t cs20 = 20, cs300 = 300;
    long long t0, dt;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    lk_init(&g, "G", 0);
    lk_init(&n, "N", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "to", 0);

    /* blocked for longer than 20 cs: ETIMEDOUT, not before 200 ms */
    t0 = t_now_ms();
    CHECK_OK(lockx(ls, &w, LKM_EXMODE, LKF_TIMEOUT, "to", &cs20));
    CHECK(lk_wait(&w, T_POS_MS), "no completion for the timed-out request");
    dt = t_now_ms() - t0;
    CHECK_EQ(w.lksb.sb_status, UDLM_ETIMEDOUT);
    CHECK(dt >= 200, "ended after %lld ms, before its 200 ms timeout", dt);
    CHECK(dt < 2000, "ended only after %lld ms", dt);
    /* its id is dead */
    CHECK_FAIL(dlm_ls_unlock(ls, w.lksb.sb_lkid, 0, &w.lksb, &w), ENOENT);

    /* without LKF_TIMEOUT the same wait goes on */
    CHECK_OK(lockx(ls, &n, LKM_EXMODE, 0, "to", &cs20));
    settle(600);
    CHECK_EQ(lk_asts(&n), 0);
    CHECK_EQ(n.lksb.sb_status, EINPROG);

    /* granted within its timeout: stays granted after the timeout passed */
    CHECK_OK(lockx(ls, &g, LKM_PRMODE, LKF_TIMEOUT, "other", &cs20));
    CHECK(lk_wait(&g, T_POS_MS), "G not granted");
    CHECK_EQ(g.lksb.sb_status, 0);
    settle(500);
    CHECK_EQ(lk_asts(&g), 1);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "other"), EAGAIN);

    /* H leaves: N (no timeout) is granted */
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&n, T_POS_MS), "N not granted");
    CHECK_EQ(n.lksb.sb_status, 0);

    /* a request granted late, but within a 3 s timeout, is simply granted */
    lk_init(&w, "W2", 0);
    CHECK_OK(lockx(ls, &w, LKM_EXMODE, LKF_TIMEOUT, "to", &cs300));
    settle(300);
    CHECK_EQ(lk_asts(&w), 0);
    UNLOCK_EXPECT(ls, &n, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W2 not granted");
    CHECK_EQ(w.lksb.sb_status, 0);
    UNLOCK_EXPECT(ls, &w, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &g, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
