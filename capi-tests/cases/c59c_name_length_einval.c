// LIB: both
// Spec 11.59 / 2.10: lockspace names of 65 bytes or empty -> NULL/EINVAL
// (create and new); 64 bytes is the longest legal name.
#include "../common.h"

int main(void)
{
    T_INIT();
    char n65[80], n64[80];
    dlm_lshandle_t h;
    int k;

    k = snprintf(n64, sizeof n64, "t_c59c_%d_", (int)getpid());
    memset(n64 + k, 'x', 64 - (size_t)k);
    n64[64] = 0;
    memcpy(n65, n64, 64);
    n65[64] = 'y';
    n65[65] = 0;

    CHECK_NULL_ERR(dlm_create_lockspace(n65, 0600), EINVAL);
    CHECK_NULL_ERR(dlm_new_lockspace(n65, 0600, 0), EINVAL);
    CHECK_NULL_ERR(dlm_create_lockspace("", 0600), EINVAL);
    CHECK_NULL_ERR(dlm_new_lockspace("", 0600, 0), EINVAL);

    h = dlm_create_lockspace(n64, 0600);
    CHECK(h != NULL, "64-byte lockspace name rejected: errno %d (%s)", errno, t_errname(errno));
    if (h) {
        struct lk a;
        t_register_handle(h);
        lk_init(&a, "A", 0);
        LOCK_EXPECT_NB(h, &a, LKM_EXMODE, 0, "r", 0);
        t_forget_handle(h);
        CHECK_EQ(dlm_release_lockspace(n64, h, 1), 0);
    }
    return t_done();
}
