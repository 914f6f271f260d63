// LIB: both
// Spec 11.60 / oracle 06: dlm_release_lockspace(name, ls, 0) while another
// handle still holds a lock returns 0; the releasing handle's own locks are
// dropped; the lockspace keeps existing and the other handle keeps working.
// When the last handle is released the lockspace is gone (open -> ENOENT).
#include "../common.h"

int main(void)
{
    T_INIT();
    const char *name = t_ls_name(NULL);
    dlm_lshandle_t h1, h2;
    struct lk a, b, c, d;

    h1 = t_ls_create();
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    lk_init(&d, "D", 0);
    LOCK_EXPECT_NB(h1, &a, LKM_EXMODE, 0, "R", 0);
    h2 = t_ls_open();
    LOCK_EXPECT_NB(h2, &b, LKM_EXMODE, LKF_NOQUEUE, "R", EAGAIN);
    LOCK_EXPECT_NB(h2, &c, LKM_PRMODE, 0, "R2", 0);

    t_forget_handle(h1);
    CHECK_EQ(dlm_release_lockspace(name, h1, 0), 0);

    LOCK_EXPECT_NB(h2, &d, LKM_EXMODE, LKF_NOQUEUE, "R", 0);
    t_forget_handle(h2);
    CHECK_EQ(dlm_release_lockspace(name, h2, 0), 0);
    CHECK_NULL_ERR(dlm_open_lockspace(name), ENOENT);
    return t_done();
}
