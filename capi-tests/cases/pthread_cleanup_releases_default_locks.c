// LIB: dlm
// Spec 2.9: dlm_pthread_cleanup stops the default lockspace's thread and closes
// its handle -> 0; the locks taken through it are released (another handle on
// "default" can take them); a later dlm_unlock has no default lockspace
// (ENOTCONN).
#include "../common.h"

int main(void)
{
    T_INIT();
    struct lk a;
    struct dlm_lksb s;
    dlm_lshandle_t other;
    char name[48];

    snprintf(name, sizeof name, "t_cleanup_default_%d", (int)getpid());
    REQUIRE_OK(dlm_pthread_init());
    lk_init(&a, "A", 0);
    a.expect = 1;
    REQUIRE_OK(dlm_lock(LKM_EXMODE, &a.lksb, 0, name, (unsigned)strlen(name), 0, rec_ast, &a, NULL, NULL));
    CHECK(lk_wait(&a, T_POS_MS), "no AST");
    CHECK_EQ(dlm_pthread_cleanup(), 0);
    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_unlock(a.lksb.sb_lkid, 0, &s, NULL), ENOTCONN);

    other = dlm_open_lockspace("default");
    REQUIRE(other != NULL, "open default errno %d", errno);
    t_register_handle(other);
    CHECK_EQ(t_probe(other, LKM_EXMODE, 0, name), 0);
    t_forget_handle(other);
    CHECK_EQ(dlm_close_lockspace(other), 0);
    return t_done();
}
