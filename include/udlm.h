/*
 * udlm.h - udlm's extensions to the libdlm API.
 *
 * libdlm.h is left exactly as the kernel DLM's library has it; everything
 * udlm adds beyond it is named here. A program that never includes this
 * header behaves as on the kernel DLM. See udlm.h(3).
 *
 * Extensions:
 *   - lock timeouts: in a lockspace created with UDLM_LSFL_TIMEOUT, a
 *     request or conversion made with LKF_TIMEOUT through dlm_ls_lockx()
 *     that is not granted within its timeout (centiseconds) completes with
 *     sb_status ETIMEDOUT; a conversion falls back to its granted mode.
 *     Elsewhere LKF_TIMEOUT is ignored, as by kernels since Linux 6.4.
 *   - cluster-wide deadlock detection: a cycle of waiting requests (on any
 *     resources, on any nodes, conversions included) is broken by ending one
 *     request with EDEADLK; see udlm.h(3) for the choice of the victim.
 *   - hierarchical locks: in a lockspace created with UDLM_LSFL_HIERARCHY,
 *     the parent argument of the lock calls names a parent lock.
 *   - the query calls udlm_query_resource() and udlm_query_lock(): what a
 *     resource's master knows of it. They are in libudlm (link with -ludlm
 *     as well as -ldlm or -ldlm_lt) and work on udlm's lockspace handles.
 */
#ifndef UDLM_H
#define UDLM_H

#include <stdint.h>
#include <libdlm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dlm_new_lockspace() flags, in bits the kernel never used. They take
 * effect on the node where the lockspace is first created. */

/* LKF_TIMEOUT with dlm_ls_lockx()'s timeout takes effect. */
#define UDLM_LSFL_TIMEOUT   0x00010000
/* Hierarchical locks: a non-zero parent argument of the lock calls names a
 * granted lock of the same handle, and the request locks a resource inside
 * that lock's resource (a child of the same name under another parent is
 * another resource). A lock with children cannot be unlocked (ENOTEMPTY). */
#define UDLM_LSFL_HIERARCHY 0x00020000

/* The sb_status of a request or conversion whose timeout ran out. */
#define UDLM_ETIMEDOUT 110

/* Queues of struct udlm_lock_info. */
#define UDLM_QUEUE_GRANTED 0
#define UDLM_QUEUE_CONVERT 1
#define UDLM_QUEUE_WAIT    2

/* One lock of a resource, as the resource's master sees it. */
struct udlm_lock_info {
	uint32_t nodeid;  /* node of the lock's owner */
	uint32_t lkid;    /* the lock's id on that node (0: not known) */
	uint32_t pid;     /* thread id of the owner's last request */
	uint32_t flags;   /* LKF_* of that request */
	int8_t grmode;    /* granted mode (LKM_*), -1 for none */
	int8_t rqmode;    /* requested mode, -1 for none */
	uint8_t queue;    /* UDLM_QUEUE_* */
	uint8_t orphan;   /* 1: its handle closed (a PERSISTENT orphan) */
};

/* A resource, as its master sees it. */
struct udlm_resource_info {
	uint32_t master_nodeid;
	uint32_t lvb_valid;   /* 0: the value block is marked not valid */
	uint32_t has_lvb;     /* 0: no value was ever written */
	uint32_t nlocks;      /* locks on the resource, listed or not */
	char lvb[DLM_LVB_LEN];
};

/* Fills *res and up to max_locks entries of locks (granted, then
 * converting, then waiting, in queue order) for resource name of the
 * handle's lockspace. Returns the number of entries written, or -1 with
 * errno: EINVAL, ENOENT (no node masters the name: it has no locks),
 * EAGAIN (the master did not answer in time), ENOSYS (not a udlm handle). */
int udlm_query_resource(dlm_lshandle_t ls, const void *name, unsigned int namelen,
			struct udlm_resource_info *res, struct udlm_lock_info *locks,
			unsigned int max_locks);

/* The same for the resource of the caller's lock lkid, reporting that lock
 * only. Returns 0, or -1 with errno as above (ENOENT: no such lock of this
 * handle, or its request has not reached a master yet). */
int udlm_query_lock(dlm_lshandle_t ls, uint32_t lkid, struct udlm_resource_info *res,
		    struct udlm_lock_info *lock);

#ifdef __cplusplus
}
#endif

#endif /* UDLM_H */
