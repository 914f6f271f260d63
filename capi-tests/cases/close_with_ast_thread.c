// LIB: dlm
// Spec 2.9 / 2.10: dlm_close_lockspace on a handle whose AST thread is running
// stops the thread, returns 0 and releases the handle's locks.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = dlm_open_lockspace(t_ls_name(NULL));
    struct lk a;

    REQUIRE(h2 != NULL, "open errno %d", errno);
    REQUIRE_OK(dlm_ls_pthread_init(h2));
    lk_init(&a, "A", 0);
    a.expect = 1;
    REQUIRE_OK(t_lock(h2, &a, LKM_EXMODE, 0, "ct"));
    CHECK(lk_wait(&a, T_POS_MS), "AST not delivered by the handle's thread");
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "ct"), 0);
    t_ls_release(h1);
    return t_done();
}
