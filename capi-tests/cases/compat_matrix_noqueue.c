// LIB: both
// Spec 3.1: the mode compatibility matrix, probed with NOQUEUE requests
// against a single granted holder for every (held, requested) pair.
#include "../common.h"

static const int compat[6][6] = {
    /*        NL CR CW PR PW EX */
    /* NL */ { 1, 1, 1, 1, 1, 1 },
    /* CR */ { 1, 1, 1, 1, 1, 0 },
    /* CW */ { 1, 1, 1, 0, 0, 0 },
    /* PR */ { 1, 1, 0, 1, 0, 0 },
    /* PW */ { 1, 1, 0, 0, 0, 0 },
    /* EX */ { 1, 0, 0, 0, 0, 0 },
};

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int h, r;

    for (h = 0; h <= 5; h++) {
        struct lk hl;
        char res[16];
        snprintf(res, sizeof res, "cm%d", h);
        lk_init(&hl, "H", 0);
        LOCK_EXPECT_NB(ls, &hl, h, 0, res, 0);
        for (r = 0; r <= 5; r++) {
            int st = t_probe(ls, r, 0, res);
            int want = compat[h][r] ? 0 : EAGAIN;
            CHECK(st == want, "held %d, requested %d: status %s, expected %s", h, r, t_errname(st), t_errname(want));
        }
        UNLOCK_EXPECT(ls, &hl, 0, EUNLOCK);
    }
    t_ls_release(ls);
    return t_done();
}
