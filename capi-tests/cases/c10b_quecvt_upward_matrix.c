// LIB: both
// Spec 3.3 / 11.10: LKF_QUECVT is legal only for "upward" conversions:
// NL->{CR,CW,PR,PW,EX}, CR->{CW,PR,PW,EX}, CW->{PR,PW,EX}, PR->{CW,PW,EX},
// PW->{EX}; everything else (same mode, downward, anything from EX) -> EINVAL.
// Legal ones are granted at once on an uncontended resource.
#include "../common.h"

static const int upward[6][6] = {
    /*        NL CR CW PR PW EX */
    /* NL */ { 0, 1, 1, 1, 1, 1 },
    /* CR */ { 0, 0, 1, 1, 1, 1 },
    /* CW */ { 0, 0, 0, 1, 1, 1 },
    /* PR */ { 0, 0, 1, 0, 1, 1 },
    /* PW */ { 0, 0, 0, 0, 0, 1 },
    /* EX */ { 0, 0, 0, 0, 0, 0 },
};

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int g, r;

    for (g = 0; g <= 5; g++) {
        for (r = 0; r <= 5; r++) {
            struct lk a;
            char res[16];
            int rv, e;
            snprintf(res, sizeof res, "q%d%d", g, r);
            lk_init(&a, "A", 0);
            LOCK_EXPECT_NB(ls, &a, g, 0, res, 0);
            errno = 0;
            rv = t_lock_nb(ls, &a, r, LKF_CONVERT | LKF_QUECVT, res);
            e = errno;
            if (upward[g][r]) {
                CHECK(rv == 0, "QUECVT %d->%d: -> %d errno %s, expected 0", g, r, rv, t_errname(e));
                if (rv == 0) {
                    CHECK(lk_wait(&a, T_POS_MS), "QUECVT %d->%d: no AST", g, r);
                    CHECK(a.lksb.sb_status == 0, "QUECVT %d->%d: status %s", g, r, t_errname(a.lksb.sb_status));
                }
            } else {
                CHECK(rv == -1 && e == EINVAL, "QUECVT %d->%d: -> %d errno %s, expected -1/EINVAL",
                      g, r, rv, t_errname(e));
            }
            UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
        }
    }
    t_ls_release(ls);
    return t_done();
}
