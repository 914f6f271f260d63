// LIB: both
// PROC: multi
// Spec 11.48 / 6.1: a process holding EX|VALBLK (not persistent) that has
// stored a value exits while B waits for PR|VALBLK -> its lock disappears, B is
// granted with DLM_SBF_VALNOTVALID and receives the last stored value.
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
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "dead", 0);
    strcpy(a.lvb, "value-of-the-dead");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "dead", 0);
    t_send(c->c_out, 1);
    t_recv(c->c_in, &v, T_POS_MS);   /* parent's B is queued: die */
    fflush(stdout);
    _exit(t_failures ? 1 : 0);
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
    lk_init(&b, "B", 1);
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not take its lock");

    memset(b.lvb, 0xEE, DLM_LVB_LEN);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_PRMODE, LKF_VALBLK, "dead"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 0);
    t_send(c.to_child, 2);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 0);

    CHECK(lk_wait(&b, T_POS_MS), "B not granted after the EX holder exited");
    CHECK_EQ(b.lksb.sb_status, 0);
    CHECK((b.lksb.sb_flags & DLM_SBF_VALNOTVALID) != 0, "B's sb_flags 0x%x lack VALNOTVALID",
          (unsigned char)b.lksb.sb_flags);
    CHECK(strcmp(b.lvb, "value-of-the-dead") == 0, "B read \"%.31s\"", b.lvb);
    t_ls_release(ls);
    return t_done();
}
