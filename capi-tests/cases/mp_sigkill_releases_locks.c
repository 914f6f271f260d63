// LIB: both
// PROC: multi
// Spec 6.1: a process killed with SIGKILL while holding EX (and with a pending
// request on another resource) loses its locks exactly as on a normal exit:
// the other process's waiting requests are granted.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a, b;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "k1", 0);
    if (t_lock_nb(ls, &b, LKM_EXMODE, 0, "k2") != 0) return 3;   /* waits behind the parent */
    t_send(c->c_out, 1);
    for (;;) pause();
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk h2, w1, w2;
    uint32_t v;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    lk_init(&h2, "H2", 0);
    lk_init(&w1, "W1", 0);
    lk_init(&w2, "W2", 0);
    LOCK_EXPECT_NB(ls, &h2, LKM_EXMODE, 0, "k2", 0);
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not lock");
    REQUIRE_OK(t_lock_nb(ls, &w1, LKM_EXMODE, 0, "k1"));
    REQUIRE_OK(t_lock_nb(ls, &w2, LKM_PRMODE, 0, "k2"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w1) + lk_asts(&w2), 0);
    kill(c.pid, SIGKILL);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 128 + SIGKILL);
    CHECK(lk_wait(&w1, T_POS_MS), "W1 not granted after the holder was killed");
    UNLOCK_EXPECT(ls, &h2, 0, EUNLOCK);
    CHECK(lk_wait(&w2, T_POS_MS), "W2 not granted: the killed process's waiting request still blocks");
    t_ls_release(ls);
    return t_done();
}
