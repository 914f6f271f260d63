// LIB: both
// PROC: multi
// Locks belong to the open handle, not to a process (spec 6.1): a child forked
// after the parent took a lock inherits the handle's fd; when the child exits
// (with exit(), running atexit handlers) the parent's lock stays, and the
// parent can still use and release it.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    dlm_lshandle_t ls2 = t_ls_open();
    struct lk a;
    pid_t pid;
    int st;

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "fk", 0);
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) exit(0);
    st = t_wait_child(pid, T_POS_MS);
    CHECK_EQ(st, 0);
    settle(T_NEG_MS);
    CHECK_EQ(t_probe(ls2, LKM_EXMODE, 0, "fk"), EAGAIN);
    CHECK_EQ(t_probe(ls2, LKM_NLMODE, 0, "fk"), 0);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls2, LKM_EXMODE, 0, "fk"), 0);
    CHECK_EQ(dlm_close_lockspace(ls2), 0);
    t_forget_handle(ls2);
    t_ls_release(ls);
    return t_done();
}
