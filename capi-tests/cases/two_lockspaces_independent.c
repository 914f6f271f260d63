// LIB: both
// Spec 7: lockspaces are separate name spaces: EX on "r" in one lockspace does
// not conflict with EX on "r" in another; callbacks arrive on each handle's fd.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create_sfx("one");
    dlm_lshandle_t h2 = t_ls_create_sfx("two");
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT_NB(h1, &a, LKM_EXMODE, 0, "r", 0);
    LOCK_EXPECT_NB(h2, &b, LKM_EXMODE, LKF_NOQUEUE, "r", 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "r"), EAGAIN);
    CHECK_EQ(t_probe(h2, LKM_EXMODE, 0, "r"), EAGAIN);
    t_ls_release_sfx(h1, "one");
    CHECK_EQ(t_probe(h2, LKM_EXMODE, 0, "r"), EAGAIN);
    t_ls_release_sfx(h2, "two");
    return t_done();
}
