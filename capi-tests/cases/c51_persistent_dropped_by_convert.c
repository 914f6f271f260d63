// LIB: both
// PROC: multi
// Spec 11.51 / 2.4: a lock taken with PERSISTENT and later converted without
// PERSISTENT is released (not orphaned) when its process exits.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "P1", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_PERSISTENT, "s", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_CONVERT, "s", 0);
    t_send(c->c_out, a.lksb.sb_lkid);
    fflush(stdout);
    _exit(t_failures ? 1 : 0);
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk x;
    uint32_t v;
    int st = -1, i;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not report its lock");
    REQUIRE_OK(t_wait_child(c.pid, T_POS_MS));

    /* the exit clean-up may take a moment to reach the lock manager */
    for (i = 0; i < 50; i++) {
        st = t_probe(ls, LKM_EXMODE, 0, "s");
        if (st == 0) break;
        t_sleep_ms(100);
    }
    CHECK_EQ(st, 0);
    lk_init(&x, "X", 0);
    CHECK_FAIL(t_lock(ls, &x, LKM_PRMODE, LKF_ORPHAN, "s"), ENOENT);
    t_ls_release(ls);
    return t_done();
}
