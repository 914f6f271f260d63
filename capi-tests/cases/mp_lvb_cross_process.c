// LIB: both
// PROC: multi
// LVB across processes: the child writes a value (EX->NL|VALBLK) and keeps its
// NL lock; the parent's PR|VALBLK grant returns that value.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "A", 1);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "xl", 0);
    strcpy(a.lvb, "written-by-the-child");
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "xl", 0);
    t_send(c->c_out, 1);
    t_recv(c->c_in, &v, T_POS_MS);
    dlm_close_lockspace(ls);
    return t_failures ? 1 : 0;
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk b;
    uint32_t v;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not write");
    lk_init(&b, "B", 1);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, LKF_VALBLK, "xl", 0);
    CHECK(strcmp(b.lvb, "written-by-the-child") == 0, "parent read \"%.31s\"", b.lvb);
    CHECK_EQ((unsigned char)b.lksb.sb_flags, 0);
    t_send(c.to_child, 2);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 0);
    t_ls_release(ls);
    return t_done();
}
