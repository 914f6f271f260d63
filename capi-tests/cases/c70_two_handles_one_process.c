// LIB: both
// Spec 11.70 / 6.1: a lockspace opened twice in one process (create + open):
// two fds; each sees callbacks only for its own locks; closing one handle
// releases its locks but not the other handle's.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = dlm_open_lockspace(t_ls_name(NULL));
    int fd1 = dlm_ls_get_fd(h1), fd2;
    struct lk a, b;

    REQUIRE(h2 != NULL, "open errno %d", errno);
    fd2 = dlm_ls_get_fd(h2);
    CHECK(fd1 != fd2, "both handles share fd %d", fd1);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    REQUIRE_OK(t_lock_nb(h1, &a, LKM_EXMODE, 0, "x"));
    REQUIRE_OK(t_lock_nb(h2, &b, LKM_EXMODE, 0, "y"));

    REQUIRE(wait_readable(fd2, T_POS_MS), "no callback on the second handle");
    t_sleep_ms(100);
    CHECK_EQ(dlm_dispatch(fd2), 0);
    CHECK_SEQ(rec_str(), "ast:B:0");
    REQUIRE(wait_readable(fd1, T_POS_MS), "no callback on the first handle");
    CHECK_EQ(dlm_dispatch(fd1), 0);
    CHECK_SEQ(rec_str(), "ast:B:0 ast:A:0");

    CHECK_EQ(dlm_close_lockspace(h2), 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "y"), 0);
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "x"), EAGAIN);
    t_ls_release(h1);
    return t_done();
}
