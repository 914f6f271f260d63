// LIB: both
// PROC: multi
// Spec 11.50 / 2.11: an orphan (PERSISTENT EX of an exited process) blocks a
// waiter; dlm_ls_purge(ls, 0, 0) releases every orphan of the node -> the
// waiter is granted; afterwards there is nothing to adopt (ENOENT).
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
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_PERSISTENT, "p", 0);
    t_send(c->c_out, a.lksb.sb_lkid);
    fflush(stdout);
    _exit(t_failures ? 1 : 0);
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk w, x;
    uint32_t v;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not report its lock");
    REQUIRE_OK(t_wait_child(c.pid, T_POS_MS));

    REQUIRE(t_wait_orphan(ls, "p", LKM_PRMODE, T_POS_MS), "the exited process's lock did not become an orphan");
    lk_init(&w, "W", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "p"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 0);

    CHECK_OK(dlm_ls_purge(ls, 0, 0));
    CHECK(lk_wait(&w, T_POS_MS), "waiter not granted after the purge");
    CHECK_EQ(w.lksb.sb_status, 0);

    lk_init(&x, "X", 0);
    CHECK_FAIL(t_lock(ls, &x, LKM_EXMODE, LKF_ORPHAN, "p"), ENOENT);
    t_ls_release(ls);
    return t_done();
}
