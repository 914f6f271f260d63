// LIB: both
// Spec 11.59 / 2.10: dlm_open_lockspace of a name that does not exist ->
// NULL/ENOENT; once created it opens.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h, o;

    CHECK_NULL_ERR(dlm_open_lockspace(t_ls_name("missing")), ENOENT);
    h = t_ls_create();
    o = dlm_open_lockspace(t_ls_name(NULL));
    CHECK(o != NULL, "open of an existing lockspace -> NULL errno %d", errno);
    if (o) CHECK_EQ(dlm_close_lockspace(o), 0);
    t_ls_release(h);
    return t_done();
}
