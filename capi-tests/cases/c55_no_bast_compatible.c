// LIB: both
// Spec 11.55: holder PR, requester CR (compatible) -> the requester is granted
// and the holder gets no BAST.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, r;

    lk_init(&h, "H", 0);
    lk_init(&r, "R", 0);
    LOCK_EXPECT(ls, &h, LKM_PRMODE, 0, "nb", 0);
    LOCK_EXPECT(ls, &r, LKM_CRMODE, 0, "nb", 0);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:H:0 ast:R:0");
    t_ls_release(ls);
    return t_done();
}
