//! The 21 functions both libraries export (spec §2.1). Each is a thin,
//! panic-guarded call into `udlm::capi`, which does the work; `FLAVOR` (from
//! the including crate) selects the libdlm or libdlm_lt behaviour.

use super::abi::{dlm_lksb, dlm_lshandle_t};
use super::FLAVOR;
use std::ffi::{c_char, c_int, c_uint, c_void};
use udlm::capi::{self, guard, Lksb, LockCall};
use udlm::types::lkf;

fn lksb_ptr(l: *mut dlm_lksb) -> *mut Lksb {
    l as *mut Lksb
}

type Routine = Option<unsafe extern "C" fn(*mut c_void)>;

/// An asynchronous lock call: the BAST gets the completion's argument.
#[allow(clippy::too_many_arguments)]
fn async_call(
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    ast: Routine,
    astarg: *mut c_void,
    bast: Routine,
    parent: u32,
) -> LockCall {
    LockCall {
        mode,
        lksb: lksb_ptr(lksb),
        flags,
        name,
        namelen,
        ast,
        astarg,
        bast,
        bastarg: astarg,
        parent,
        timeout_cs: 0,
    }
}

/// A `_wait` lock call: the library supplies the completion routine.
#[allow(clippy::too_many_arguments)]
fn wait_call(
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    bastarg: *mut c_void,
    bast: Routine,
    parent: u32,
) -> LockCall {
    LockCall {
        mode,
        lksb: lksb_ptr(lksb),
        flags: flags | lkf::WAIT,
        name,
        namelen,
        ast: None,
        astarg: std::ptr::null_mut(),
        bast,
        bastarg,
        parent,
        timeout_cs: 0,
    }
}

/// The default lockspace, opened (or created) on demand; None with errno
/// set when that fails (spec §2.7).
fn default_lockspace() -> Option<*mut c_void> {
    match capi::default_or_open() {
        Ok(ls) => Some(ls),
        Err(e) => {
            capi::set_errno(e.to_raw());
            None
        }
    }
}

/// Reports the kernel device interface version udlm emulates: 6.0.2.
///
/// # Safety
/// Non-null arguments must point to writable `uint32_t`s.
#[no_mangle]
pub unsafe extern "C" fn dlm_kernel_version(
    maj: *mut u32,
    min: *mut u32,
    patch: *mut u32,
) -> c_int {
    guard(-1, || {
        unsafe { capi::version(maj, min, patch) };
        0
    })
}

/// Reports the library version: 6.0.2.
///
/// # Safety
/// Non-null arguments must point to writable `uint32_t`s.
#[no_mangle]
pub unsafe extern "C" fn dlm_library_version(maj: *mut u32, min: *mut u32, patch: *mut u32) {
    guard((), || unsafe { capi::version(maj, min, patch) })
}

/// Requests or converts a lock in the default lockspace, asynchronously.
///
/// # Safety
/// `lksb` (and its `sb_lvbptr` with `LKF_VALBLK`) and `name` must be valid
/// until the completion AST has run.
#[no_mangle]
pub unsafe extern "C" fn dlm_lock(
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    parent: u32,
    astaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    astarg: *mut c_void,
    bastaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    range: *mut c_void,
) -> c_int {
    // `parent` matters only in a hierarchical lockspace (include/udlm.h);
    // elsewhere it is ignored, as by the kernel (spec §2.4).
    guard(-1, || {
        let Some(ls) = default_lockspace() else {
            return -1;
        };
        unsafe {
            capi::ls_lock(
                FLAVOR,
                ls,
                async_call(
                    mode, lksb, flags, name, namelen, astaddr, astarg, bastaddr, parent,
                ),
                range,
            )
        }
    })
}

/// Unlocks or cancels a lock of the default lockspace, asynchronously.
///
/// # Safety
/// `lksb` must be valid until the completion AST has run.
#[no_mangle]
pub unsafe extern "C" fn dlm_unlock(
    lkid: u32,
    flags: u32,
    lksb: *mut dlm_lksb,
    astarg: *mut c_void,
) -> c_int {
    guard(-1, || {
        let ls = capi::default_handle().unwrap_or(std::ptr::null_mut());
        unsafe { capi::ls_unlock(FLAVOR, ls, lkid, flags, lksb_ptr(lksb), astarg) }
    })
}

/// Requests or converts a lock in the default lockspace and waits.
///
/// # Safety
/// As `dlm_lock`.
#[no_mangle]
pub unsafe extern "C" fn dlm_lock_wait(
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    parent: u32,
    bastarg: *mut c_void,
    bastaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    range: *mut c_void,
) -> c_int {
    // `parent` matters only in a hierarchical lockspace (include/udlm.h);
    // elsewhere it is ignored, as by the kernel (spec §2.4).
    guard(-1, || {
        let Some(ls) = default_lockspace() else {
            return -1;
        };
        unsafe {
            capi::ls_lock(
                FLAVOR,
                ls,
                wait_call(mode, lksb, flags, name, namelen, bastarg, bastaddr, parent),
                range,
            )
        }
    })
}

/// Unlocks a lock of the default lockspace and waits.
///
/// # Safety
/// `lksb` must be valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dlm_unlock_wait(lkid: u32, flags: u32, lksb: *mut dlm_lksb) -> c_int {
    guard(-1, || {
        let ls = capi::default_handle().unwrap_or(std::ptr::null_mut());
        unsafe {
            capi::ls_unlock(
                FLAVOR,
                ls,
                lkid,
                flags | lkf::WAIT,
                lksb_ptr(lksb),
                std::ptr::null_mut(),
            )
        }
    })
}

/// The default lockspace's callback descriptor, opening it if needed.
///
/// # Safety
/// None beyond the C contract.
#[no_mangle]
pub unsafe extern "C" fn dlm_get_fd() -> c_int {
    guard(-1, || default_lockspace().map_or(-1, capi::ls_get_fd))
}

/// Delivers every pending callback of the handle whose descriptor is `fd`.
///
/// # Safety
/// Callbacks run the routines the program registered.
#[no_mangle]
pub unsafe extern "C" fn dlm_dispatch(fd: c_int) -> c_int {
    guard(-1, || capi::dispatch(fd))
}

/// Creates (or joins) lockspace `name`.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dlm_create_lockspace(
    name: *const c_char,
    mode: libc::mode_t,
) -> dlm_lshandle_t {
    guard(std::ptr::null_mut(), || unsafe {
        capi::new_lockspace(name, mode, 0)
    })
}

/// Closes the handle and asks for the lockspace's removal; returns 0.
///
/// # Safety
/// `ls` must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dlm_release_lockspace(
    name: *const c_char,
    ls: dlm_lshandle_t,
    force: c_int,
) -> c_int {
    // The handle names the lockspace; libdlm uses `name` only for the device.
    let _ = name;
    guard(-1, || capi::release_lockspace(ls, force))
}

/// Opens an existing lockspace.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dlm_open_lockspace(name: *const c_char) -> dlm_lshandle_t {
    guard(std::ptr::null_mut(), || unsafe {
        capi::open_lockspace(name)
    })
}

/// Closes a handle: its locks are released, PERSISTENT ones orphaned.
///
/// # Safety
/// `ls` must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dlm_close_lockspace(ls: dlm_lshandle_t) -> c_int {
    guard(0, || capi::close_lockspace(ls))
}

/// The handle's callback descriptor.
///
/// # Safety
/// None beyond the C contract.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_get_fd(ls: dlm_lshandle_t) -> c_int {
    guard(-1, || capi::ls_get_fd(ls))
}

/// Creates (or joins) lockspace `name` with `DLM_LSFL_*` flags.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dlm_new_lockspace(
    name: *const c_char,
    mode: libc::mode_t,
    flags: u32,
) -> dlm_lshandle_t {
    guard(std::ptr::null_mut(), || unsafe {
        capi::new_lockspace(name, mode, flags)
    })
}

/// Requests or converts a lock, asynchronously.
///
/// # Safety
/// As `dlm_lock`.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_lock(
    lockspace: dlm_lshandle_t,
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    parent: u32,
    astaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    astarg: *mut c_void,
    bastaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    range: *mut c_void,
) -> c_int {
    guard(-1, || unsafe {
        capi::ls_lock(
            FLAVOR,
            lockspace,
            async_call(
                mode, lksb, flags, name, namelen, astaddr, astarg, bastaddr, parent,
            ),
            range,
        )
    })
}

/// `dlm_ls_lock` with a transaction id and a timeout. The transaction id is
/// ignored, as by the kernel. The timeout (centiseconds) takes effect with
/// `LKF_TIMEOUT` in a lockspace created with `UDLM_LSFL_TIMEOUT`
/// (include/udlm.h); elsewhere it is ignored, as by kernels since 6.4.
///
/// # Safety
/// As `dlm_lock`; `timeout` must be null or point to a readable `u64`.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_lockx(
    lockspace: dlm_lshandle_t,
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    parent: u32,
    astaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    astarg: *mut c_void,
    bastaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    xid: *mut u64,
    timeout: *mut u64,
) -> c_int {
    // The transaction id fed dlm_controld's long-dead deadlock detector;
    // udlm's detector works on lock owners and needs none.
    let _ = xid;
    guard(-1, || unsafe {
        let mut call = async_call(
            mode, lksb, flags, name, namelen, astaddr, astarg, bastaddr, parent,
        );
        if !timeout.is_null() {
            // SAFETY: the caller passes null or a readable u64.
            call.timeout_cs = timeout.read_unaligned();
        }
        capi::ls_lock(FLAVOR, lockspace, call, std::ptr::null_mut())
    })
}

/// Unlocks or cancels a lock, asynchronously.
///
/// # Safety
/// `lksb` must be valid until the completion AST has run.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_unlock(
    lockspace: dlm_lshandle_t,
    lkid: u32,
    flags: u32,
    lksb: *mut dlm_lksb,
    astarg: *mut c_void,
) -> c_int {
    guard(-1, || unsafe {
        capi::ls_unlock(FLAVOR, lockspace, lkid, flags, lksb_ptr(lksb), astarg)
    })
}

/// Requests or converts a lock and waits for the outcome.
///
/// # Safety
/// As `dlm_lock`.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_lock_wait(
    lockspace: dlm_lshandle_t,
    mode: u32,
    lksb: *mut dlm_lksb,
    flags: u32,
    name: *const c_void,
    namelen: c_uint,
    parent: u32,
    bastarg: *mut c_void,
    bastaddr: Option<unsafe extern "C" fn(*mut c_void)>,
    range: *mut c_void,
) -> c_int {
    guard(-1, || unsafe {
        capi::ls_lock(
            FLAVOR,
            lockspace,
            wait_call(mode, lksb, flags, name, namelen, bastarg, bastaddr, parent),
            range,
        )
    })
}

/// Unlocks a lock and waits for the outcome.
///
/// # Safety
/// `lksb` must be valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_unlock_wait(
    lockspace: dlm_lshandle_t,
    lkid: u32,
    flags: u32,
    lksb: *mut dlm_lksb,
) -> c_int {
    guard(-1, || unsafe {
        capi::ls_unlock(
            FLAVOR,
            lockspace,
            lkid,
            flags | lkf::WAIT,
            lksb_ptr(lksb),
            std::ptr::null_mut(),
        )
    })
}

/// Cancels a waiting request or conversion with status `EDEADLK`.
///
/// # Safety
/// None beyond the C contract.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_deadlock_cancel(
    ls: dlm_lshandle_t,
    lkid: u32,
    flags: u32,
) -> c_int {
    guard(-1, || capi::deadlock_cancel(ls, lkid, flags))
}

/// Purges orphans of `pid` (all with 0), or this handle's own locks when
/// `pid` is the calling thread.
///
/// # Safety
/// None beyond the C contract.
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_purge(
    lockspace: dlm_lshandle_t,
    nodeid: c_int,
    pid: c_int,
) -> c_int {
    guard(-1, || capi::purge(lockspace, nodeid, pid))
}

/// Keeps `c_char` in use for cbindgen's benefit on every target.
#[allow(dead_code)]
type CChar = c_char;
