// LIB: both
// PROC: multi
// Spec 6.1: a process that exits while holding EX (not persistent), without
// unlocking or closing, loses its lock: another process's queued request is
// granted, and the exited process leaves no orphan to adopt.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "ex", 0);
    t_send(c->c_out, 1);
    t_recv(c->c_in, &v, T_POS_MS);
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
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not take its lock");
    lk_init(&w, "W", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "ex"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 0);
    t_send(c.to_child, 2);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 0);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted after the holder exited");
    CHECK_EQ(w.lksb.sb_status, 0);
    lk_init(&x, "X", 0);
    CHECK_FAIL(t_lock(ls, &x, LKM_EXMODE, LKF_ORPHAN, "ex"), ENOENT);
    t_ls_release(ls);
    return t_done();
}
