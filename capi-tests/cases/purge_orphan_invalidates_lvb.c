// LIB: both
// PROC: multi
// Spec 6.2: purging a PW/EX orphan invalidates the LVB: an exited process left
// a PERSISTENT EX|VALBLK orphan after storing a value; after dlm_ls_purge the
// next VALBLK grant carries DLM_SBF_VALNOTVALID and the stored value.
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
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK | LKF_PERSISTENT, "po", 0);
    strcpy(a.lvb, "orphan-value");
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK | LKF_PERSISTENT, "po", 0);
    t_send(c->c_out, 1);
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
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not lock");
    REQUIRE_OK(t_wait_child(c.pid, T_POS_MS));
    REQUIRE(t_wait_orphan(ls, "po", LKM_PRMODE, T_POS_MS), "no orphan");
    lk_init(&b, "B", 1);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_PRMODE, LKF_VALBLK, "po"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 0);
    CHECK_OK(dlm_ls_purge(ls, 0, 0));
    CHECK(lk_wait(&b, T_POS_MS), "B not granted after the purge");
    CHECK_EQ(b.lksb.sb_status, 0);
    CHECK((b.lksb.sb_flags & DLM_SBF_VALNOTVALID) != 0, "sb_flags 0x%x lack VALNOTVALID", (unsigned char)b.lksb.sb_flags);
    CHECK(strcmp(b.lvb, "orphan-value") == 0, "B read \"%.31s\"", b.lvb);
    t_ls_release(ls);
    return t_done();
}
