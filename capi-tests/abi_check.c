/*
 * abi_check.c - print everything of libdlm.h that is part of the ABI/API:
 * the layout of struct dlm_lksb, the type of dlm_lshandle_t, the value and C
 * type of every macro constant, and (at compile time) the prototypes of all
 * 26 functions. run.sh --abi compiles it against /usr/include/libdlm.h and
 * against <repo>/include/libdlm.h and diffs the two outputs.
 */
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <libdlm.h>

#define TYPENAME(x) _Generic((x), \
    char: "char", signed char: "signed char", unsigned char: "unsigned char", \
    short: "short", unsigned short: "unsigned short", \
    int: "int", unsigned int: "unsigned int", \
    long: "long", unsigned long: "unsigned long", \
    long long: "long long", unsigned long long: "unsigned long long", \
    char *: "char *", void *: "void *", default: "other")

#define M(name) printf("macro %-22s = 0x%llx (%lld) type %s\n", #name, \
    (unsigned long long)(name), (long long)(name), TYPENAME(name))

/* The reference prototypes: a conflicting declaration in the header under
 * test is a compile error. */
extern int dlm_kernel_version(uint32_t *maj, uint32_t *min, uint32_t *patch);
extern void dlm_library_version(uint32_t *maj, uint32_t *min, uint32_t *patch);
extern int dlm_lock(uint32_t mode, struct dlm_lksb *lksb, uint32_t flags, const void *name,
                    unsigned int namelen, uint32_t parent, void (*astaddr)(void *astarg),
                    void *astarg, void (*bastaddr)(void *astarg), void *range);
extern int dlm_unlock(uint32_t lkid, uint32_t flags, struct dlm_lksb *lksb, void *astarg);
extern int dlm_lock_wait(uint32_t mode, struct dlm_lksb *lksb, uint32_t flags, const void *name,
                         unsigned int namelen, uint32_t parent, void *bastarg,
                         void (*bastaddr)(void *bastarg), void *range);
extern int dlm_unlock_wait(uint32_t lkid, uint32_t flags, struct dlm_lksb *lksb);
extern int dlm_get_fd(void);
extern int dlm_dispatch(int fd);
extern dlm_lshandle_t dlm_create_lockspace(const char *name, mode_t mode);
extern int dlm_release_lockspace(const char *name, dlm_lshandle_t ls, int force);
extern dlm_lshandle_t dlm_open_lockspace(const char *name);
extern int dlm_close_lockspace(dlm_lshandle_t ls);
extern int dlm_ls_get_fd(dlm_lshandle_t ls);
extern dlm_lshandle_t dlm_new_lockspace(const char *name, mode_t mode, uint32_t flags);
extern int dlm_ls_lock(dlm_lshandle_t lockspace, uint32_t mode, struct dlm_lksb *lksb, uint32_t flags,
                       const void *name, unsigned int namelen, uint32_t parent,
                       void (*astaddr)(void *astarg), void *astarg, void (*bastaddr)(void *astarg),
                       void *range);
extern int dlm_ls_lockx(dlm_lshandle_t lockspace, uint32_t mode, struct dlm_lksb *lksb, uint32_t flags,
                        const void *name, unsigned int namelen, uint32_t parent,
                        void (*astaddr)(void *astarg), void *astarg, void (*bastaddr)(void *astarg),
                        uint64_t *xid, uint64_t *timeout);
extern int dlm_ls_unlock(dlm_lshandle_t lockspace, uint32_t lkid, uint32_t flags, struct dlm_lksb *lksb,
                         void *astarg);
extern int dlm_ls_lock_wait(dlm_lshandle_t lockspace, uint32_t mode, struct dlm_lksb *lksb,
                            uint32_t flags, const void *name, unsigned int namelen, uint32_t parent,
                            void *bastarg, void (*bastaddr)(void *bastarg), void *range);
extern int dlm_ls_unlock_wait(dlm_lshandle_t lockspace, uint32_t lkid, uint32_t flags,
                              struct dlm_lksb *lksb);
extern int dlm_ls_deadlock_cancel(dlm_lshandle_t ls, uint32_t lkid, uint32_t flags);
extern int dlm_ls_purge(dlm_lshandle_t lockspace, int nodeid, int pid);
#ifdef _REENTRANT
extern int lock_resource(const char *resource, int mode, int flags, int *lockid);
extern int unlock_resource(int lockid);
extern int dlm_pthread_init(void);
extern int dlm_ls_pthread_init(dlm_lshandle_t lockspace);
extern int dlm_pthread_cleanup(void);
#endif

int main(void)
{
    struct dlm_lksb l;
    dlm_lshandle_t h = 0;

    printf("sizeof(struct dlm_lksb) = %zu\n", sizeof(struct dlm_lksb));
    printf("alignof(struct dlm_lksb) = %zu\n", _Alignof(struct dlm_lksb));
    printf("offsetof(sb_status) = %zu size %zu type %s\n", offsetof(struct dlm_lksb, sb_status), sizeof l.sb_status, TYPENAME(l.sb_status));
    printf("offsetof(sb_lkid) = %zu size %zu type %s\n", offsetof(struct dlm_lksb, sb_lkid), sizeof l.sb_lkid, TYPENAME(l.sb_lkid));
    printf("offsetof(sb_flags) = %zu size %zu type %s\n", offsetof(struct dlm_lksb, sb_flags), sizeof l.sb_flags, TYPENAME(l.sb_flags));
    printf("offsetof(sb_lvbptr) = %zu size %zu type %s\n", offsetof(struct dlm_lksb, sb_lvbptr), sizeof l.sb_lvbptr, TYPENAME(l.sb_lvbptr));
    printf("dlm_lshandle_t: size %zu type %s\n", sizeof h, TYPENAME(h));
#ifdef DLM_LVB_LEN
    M(DLM_LVB_LEN);
#else
    printf("macro DLM_LVB_LEN MISSING\n");
#endif
#ifdef DLM_LOCKSPACE_LEN
    M(DLM_LOCKSPACE_LEN);
#else
    printf("macro DLM_LOCKSPACE_LEN MISSING\n");
#endif
#ifdef DLM_RESNAME_MAXLEN
    M(DLM_RESNAME_MAXLEN);
#else
    printf("macro DLM_RESNAME_MAXLEN MISSING\n");
#endif
#ifdef DLM_SBF_DEMOTED
    M(DLM_SBF_DEMOTED);
#else
    printf("macro DLM_SBF_DEMOTED MISSING\n");
#endif
#ifdef DLM_SBF_VALNOTVALID
    M(DLM_SBF_VALNOTVALID);
#else
    printf("macro DLM_SBF_VALNOTVALID MISSING\n");
#endif
#ifdef DLM_SBF_ALTMODE
    M(DLM_SBF_ALTMODE);
#else
    printf("macro DLM_SBF_ALTMODE MISSING\n");
#endif
#ifdef DLM_LSFL_TIMEWARN
    M(DLM_LSFL_TIMEWARN);
#else
    printf("macro DLM_LSFL_TIMEWARN MISSING\n");
#endif
#ifdef DLM_LSFL_FS
    M(DLM_LSFL_FS);
#else
    printf("macro DLM_LSFL_FS MISSING\n");
#endif
#ifdef DLM_LSFL_NEWEXCL
    M(DLM_LSFL_NEWEXCL);
#else
    printf("macro DLM_LSFL_NEWEXCL MISSING\n");
#endif
#ifdef LKM_NLMODE
    M(LKM_NLMODE);
#else
    printf("macro LKM_NLMODE MISSING\n");
#endif
#ifdef LKM_CRMODE
    M(LKM_CRMODE);
#else
    printf("macro LKM_CRMODE MISSING\n");
#endif
#ifdef LKM_CWMODE
    M(LKM_CWMODE);
#else
    printf("macro LKM_CWMODE MISSING\n");
#endif
#ifdef LKM_PRMODE
    M(LKM_PRMODE);
#else
    printf("macro LKM_PRMODE MISSING\n");
#endif
#ifdef LKM_PWMODE
    M(LKM_PWMODE);
#else
    printf("macro LKM_PWMODE MISSING\n");
#endif
#ifdef LKM_EXMODE
    M(LKM_EXMODE);
#else
    printf("macro LKM_EXMODE MISSING\n");
#endif
#ifdef LKF_NOQUEUE
    M(LKF_NOQUEUE);
#else
    printf("macro LKF_NOQUEUE MISSING\n");
#endif
#ifdef LKF_CANCEL
    M(LKF_CANCEL);
#else
    printf("macro LKF_CANCEL MISSING\n");
#endif
#ifdef LKF_CONVERT
    M(LKF_CONVERT);
#else
    printf("macro LKF_CONVERT MISSING\n");
#endif
#ifdef LKF_VALBLK
    M(LKF_VALBLK);
#else
    printf("macro LKF_VALBLK MISSING\n");
#endif
#ifdef LKF_QUECVT
    M(LKF_QUECVT);
#else
    printf("macro LKF_QUECVT MISSING\n");
#endif
#ifdef LKF_IVVALBLK
    M(LKF_IVVALBLK);
#else
    printf("macro LKF_IVVALBLK MISSING\n");
#endif
#ifdef LKF_CONVDEADLK
    M(LKF_CONVDEADLK);
#else
    printf("macro LKF_CONVDEADLK MISSING\n");
#endif
#ifdef LKF_PERSISTENT
    M(LKF_PERSISTENT);
#else
    printf("macro LKF_PERSISTENT MISSING\n");
#endif
#ifdef LKF_NODLCKWT
    M(LKF_NODLCKWT);
#else
    printf("macro LKF_NODLCKWT MISSING\n");
#endif
#ifdef LKF_NODLCKBLK
    M(LKF_NODLCKBLK);
#else
    printf("macro LKF_NODLCKBLK MISSING\n");
#endif
#ifdef LKF_EXPEDITE
    M(LKF_EXPEDITE);
#else
    printf("macro LKF_EXPEDITE MISSING\n");
#endif
#ifdef LKF_NOQUEUEBAST
    M(LKF_NOQUEUEBAST);
#else
    printf("macro LKF_NOQUEUEBAST MISSING\n");
#endif
#ifdef LKF_HEADQUE
    M(LKF_HEADQUE);
#else
    printf("macro LKF_HEADQUE MISSING\n");
#endif
#ifdef LKF_NOORDER
    M(LKF_NOORDER);
#else
    printf("macro LKF_NOORDER MISSING\n");
#endif
#ifdef LKF_ORPHAN
    M(LKF_ORPHAN);
#else
    printf("macro LKF_ORPHAN MISSING\n");
#endif
#ifdef LKF_ALTPR
    M(LKF_ALTPR);
#else
    printf("macro LKF_ALTPR MISSING\n");
#endif
#ifdef LKF_ALTCW
    M(LKF_ALTCW);
#else
    printf("macro LKF_ALTCW MISSING\n");
#endif
#ifdef LKF_FORCEUNLOCK
    M(LKF_FORCEUNLOCK);
#else
    printf("macro LKF_FORCEUNLOCK MISSING\n");
#endif
#ifdef LKF_TIMEOUT
    M(LKF_TIMEOUT);
#else
    printf("macro LKF_TIMEOUT MISSING\n");
#endif
#ifdef LKF_WAIT
    M(LKF_WAIT);
#else
    printf("macro LKF_WAIT MISSING\n");
#endif
#ifdef ECANCEL
    M(ECANCEL);
#else
    printf("macro ECANCEL MISSING\n");
#endif
#ifdef EUNLOCK
    M(EUNLOCK);
#else
    printf("macro EUNLOCK MISSING\n");
#endif
#ifdef EINPROG
    M(EINPROG);
#else
    printf("macro EINPROG MISSING\n");
#endif
    return 0;
}
