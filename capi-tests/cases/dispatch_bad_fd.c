// LIB: both
// Spec 2.8: dlm_dispatch on an fd that is not open -> -1 with errno EBADF.
#include "../common.h"

int main(void)
{
    T_INIT();
    int fd = open("/dev/null", O_RDONLY);
    REQUIRE(fd >= 0, "open /dev/null");
    close(fd);
    CHECK_FAIL(dlm_dispatch(fd), EBADF);
    CHECK_FAIL(dlm_dispatch(-1), EBADF);
    return t_done();
}
