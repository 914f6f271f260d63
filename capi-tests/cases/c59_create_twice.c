// LIB: both
// Spec 11.59 / 2.10: dlm_create_lockspace twice on the same name (no NEWEXCL)
// -> both calls succeed with two distinct handles to one lockspace (a lock
// through one conflicts with a NOQUEUE request through the other).
#include "../common.h"

int main(void)
{
    T_INIT();
    const char *name = t_ls_name(NULL);
    dlm_lshandle_t h1, h2;
    struct lk a, b;

    h1 = dlm_create_lockspace(name, 0600);
    REQUIRE(h1 != NULL, "first create errno %d", errno);
    h2 = dlm_create_lockspace(name, 0600);
    REQUIRE(h2 != NULL, "second create of an existing lockspace -> NULL errno %d (%s)", errno, t_errname(errno));
    CHECK(h1 != h2, "same handle returned twice");
    CHECK(dlm_ls_get_fd(h1) != dlm_ls_get_fd(h2), "both handles share one fd");
    t_register_handle(h1);
    t_register_handle(h2);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(h1, &a, LKM_EXMODE, 0, "tw", 0);
    LOCK_EXPECT_NB(h2, &b, LKM_EXMODE, LKF_NOQUEUE, "tw", EAGAIN);
    t_forget_handle(h2);
    CHECK_EQ(dlm_release_lockspace(name, h2, 0), 0);
    t_ls_release(h1);
    return t_done();
}
