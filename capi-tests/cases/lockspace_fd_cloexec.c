// LIB: both
// Spec 2.8: the fds behind lockspace handles are close-on-exec (created and
// opened handles, and the default lockspace's fd).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = t_ls_open();
    int fd1 = dlm_ls_get_fd(h1), fd2 = dlm_ls_get_fd(h2), fd3 = dlm_get_fd();

    CHECK(fd1 >= 0 && fd2 >= 0 && fd3 >= 0, "fds %d %d %d", fd1, fd2, fd3);
    CHECK((fcntl(fd1, F_GETFD) & FD_CLOEXEC) != 0, "created handle's fd is not close-on-exec");
    CHECK((fcntl(fd2, F_GETFD) & FD_CLOEXEC) != 0, "opened handle's fd is not close-on-exec");
    CHECK((fcntl(fd3, F_GETFD) & FD_CLOEXEC) != 0, "default lockspace's fd is not close-on-exec");
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    t_forget_handle(h2);
    t_ls_release(h1);
    return t_done();
}
