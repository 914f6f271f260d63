// LIB: both
// Spec 11.62 / 1.1: dlm_library_version -> 6.0.2; dlm_kernel_version -> 0 and
// 6.0.2 (the device interface version of current kernels).
#include "../common.h"

int main(void)
{
    T_INIT();
    uint32_t ma = 99, mi = 99, pa = 99;

    dlm_library_version(&ma, &mi, &pa);
    CHECK(ma == 6 && mi == 0 && pa == 2, "dlm_library_version -> %u.%u.%u", ma, mi, pa);
    ma = mi = pa = 99;
    CHECK_EQ(dlm_kernel_version(&ma, &mi, &pa), 0);
    CHECK(ma == 6 && mi == 0 && pa == 2, "dlm_kernel_version -> %u.%u.%u", ma, mi, pa);
    return t_done();
}
