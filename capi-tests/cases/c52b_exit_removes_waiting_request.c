// LIB: both
// PROC: multi
// Spec 11.52 / 6.1: a process whose request is still waiting exits -> the
// request is removed; a request queued behind it by another process is
// granted when the holder leaves.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk w;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&w, "CW", 0);
    if (t_lock(ls, &w, LKM_EXMODE, 0, "xq") != 0) return 3;
    settle(T_NEG_MS);
    if (lk_asts(&w) != 0) return 4;      /* must be waiting */
    t_send(c->c_out, 1);
    t_recv(c->c_in, &v, T_POS_MS);
    _exit(0);
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk h, w;
    uint32_t v;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "xq", 0);
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not queue its request");
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_PRMODE, 0, "xq"));
    t_send(c.to_child, 2);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 0);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted: the exited process's request still blocks it");
    CHECK_EQ(w.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
