// LIB: both
// PROC: multi
// BAST across processes: the child holds EX with a BAST routine; the parent's
// EX request makes the child's BAST routine run (once, with its argument); the
// child unlocks in response and the parent is granted.
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
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "xb", 0);
    t_send(c->c_out, 1);
    if (!lk_wait_bast(&a, 1, T_POS_MS)) { printf("child: no BAST\n"); return 4; }
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:A:0 bast:A ast:A:EUNLOCK");
    dlm_close_lockspace(ls);
    return t_failures ? 1 : 0;
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    struct lk w;
    uint32_t v;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &v, T_POS_MS), "child did not take its lock");
    lk_init(&w, "W", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "xb"));
    CHECK(lk_wait(&w, T_POS_MS), "W not granted (child did not react to its BAST?)");
    CHECK_EQ(w.lksb.sb_status, 0);
    CHECK_EQ(t_wait_child(c.pid, T_POS_MS), 0);
    t_ls_release(ls);
    return t_done();
}
