// LIB: both
// Spec 2.11: dlm_ls_purge(ls, 0, getpid()) from the main thread force-unlocks
// every lock of that handle silently (no ASTs) and drops its pending
// callbacks; another handle's locks are untouched.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = dlm_open_lockspace(t_ls_name(NULL));
    struct lk a, b, c;
    int fd2;

    REQUIRE(h2 != NULL, "open errno %d", errno);
    fd2 = dlm_ls_get_fd(h2);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(h1, &c, LKM_PRMODE, 0, "keep", 0);
    REQUIRE_OK(t_lock(h2, &a, LKM_EXMODE, 0, "pp"));
    REQUIRE_OK(t_lock(h2, &b, LKM_EXMODE, 0, "pp2"));
    REQUIRE(wait_readable(fd2, T_POS_MS), "no callbacks pending on the second handle");
    CHECK_OK(dlm_ls_purge(h2, 0, (int)getpid()));
    CHECK(!wait_readable(fd2, T_NEG_MS), "callbacks still pending after the purge");
    CHECK_EQ(dlm_dispatch(fd2), 0);
    CHECK_EQ(lk_asts(&a) + lk_asts(&b), 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "pp"), 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "pp2"), 0);
    CHECK_EQ(t_probe(h1, LKM_CWMODE, 0, "keep"), EAGAIN);
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    t_ls_release(h1);
    return t_done();
}
