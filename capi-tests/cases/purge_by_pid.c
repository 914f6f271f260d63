// LIB: both
// PROC: multi
// Spec 2.11 / 6.2: dlm_ls_purge(ls, 0, pid) releases only the orphans left by
// process pid: two exited processes leave PERSISTENT EX orphans on p1 and p2;
// purging the first one's pid frees p1 but not p2; purging the second frees p2.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a;
    const char *res = arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "P", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_PERSISTENT, res, 0);
    t_send(c->c_out, 1);
    _exit(t_failures ? 1 : 0);
}

int main(void)
{
    T_INIT();
    struct t_child c1, c2;
    dlm_lshandle_t ls;
    uint32_t v;
    int st, i;

    t_fork(&c1, child, (void *)"p1");
    t_fork(&c2, child, (void *)"p2");
    ls = t_ls_create();
    t_send(c1.to_child, 1);
    t_send(c2.to_child, 1);
    REQUIRE(t_recv(c1.from_child, &v, T_POS_MS), "child 1 did not lock");
    REQUIRE(t_recv(c2.from_child, &v, T_POS_MS), "child 2 did not lock");
    REQUIRE_OK(t_wait_child(c1.pid, T_POS_MS));
    REQUIRE_OK(t_wait_child(c2.pid, T_POS_MS));
    REQUIRE(t_wait_orphan(ls, "p1", LKM_PRMODE, T_POS_MS), "no orphan on p1");
    REQUIRE(t_wait_orphan(ls, "p2", LKM_PRMODE, T_POS_MS), "no orphan on p2");

    CHECK_OK(dlm_ls_purge(ls, 0, (int)c1.pid));
    for (i = 0, st = -1; i < 50; i++) {
        st = t_probe(ls, LKM_EXMODE, 0, "p1");
        if (st == 0) break;
        t_sleep_ms(50);
    }
    CHECK_EQ(st, 0);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "p2"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "p2"), EAGAIN);

    CHECK_OK(dlm_ls_purge(ls, 0, (int)c2.pid));
    for (i = 0, st = -1; i < 50; i++) {
        st = t_probe(ls, LKM_EXMODE, 0, "p2");
        if (st == 0) break;
        t_sleep_ms(50);
    }
    CHECK_EQ(st, 0);
    t_ls_release(ls);
    return t_done();
}
