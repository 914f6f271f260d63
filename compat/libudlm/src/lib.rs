//! `libudlm.so.1`: the extension calls of include/udlm.h. They work on
//! lockspace handles of udlm's `libdlm.so.3` or `libdlm_lt.so.3`, reaching
//! the library that made the handle through the handle's head
//! (`udlm::capi::ext`); a handle of another libdlm gives ENOSYS. Built as
//! `libudlmext.so`, installed as `libudlm.so.1` (SONAME set in build.rs).

use std::ffi::{c_int, c_uint, c_void};
use udlm::capi::ext::{ops_of, UdlmLockInfo, UdlmResourceInfo, EXT_VERSION};
use udlm::capi::{guard, set_errno};

/// The extension table of `ls`, or -1 with errno set.
///
/// # Safety
/// As [`ops_of`].
unsafe fn table(ls: *mut c_void) -> Result<&'static udlm::capi::ext::ExtOps, c_int> {
    if ls.is_null() {
        set_errno(libc::EINVAL);
        return Err(-1);
    }
    // SAFETY: per this function's contract.
    match unsafe { ops_of(ls) } {
        Some(t) if t.version >= EXT_VERSION => Ok(t),
        _ => {
            set_errno(libc::ENOSYS);
            Err(-1)
        }
    }
}

/// What the master of resource `name` knows of it: fills `*res` and up to
/// `max_locks` entries of `locks`; returns how many entries it wrote, or -1
/// with errno EINVAL, ENOENT (no node masters the name: it has no locks),
/// EAGAIN (the master did not answer in time) or ENOSYS (not a udlm handle).
///
/// # Safety
/// `ls` a lockspace handle; `name` `namelen` readable bytes; `res` writable;
/// `locks` writable for `max_locks` entries (may be null when 0).
#[no_mangle]
pub unsafe extern "C" fn udlm_query_resource(
    ls: *mut c_void,
    name: *const c_void,
    namelen: c_uint,
    res: *mut UdlmResourceInfo,
    locks: *mut UdlmLockInfo,
    max_locks: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: per this function's contract.
        let t = match unsafe { table(ls) } {
            Ok(t) => t,
            Err(rc) => return rc,
        };
        if name.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        // SAFETY: per this function's contract.
        unsafe { (t.query)(ls, 0, name, namelen, res, locks, max_locks) }
    })
}

/// [`udlm_query_resource`] for the resource of the caller's lock `lkid`,
/// reporting only that lock in `*lock`. Returns 0, or -1 with errno as
/// there (ENOENT: no such lock of this handle).
///
/// # Safety
/// `ls` a lockspace handle; `res` and `lock` writable.
#[no_mangle]
pub unsafe extern "C" fn udlm_query_lock(
    ls: *mut c_void,
    lkid: u32,
    res: *mut UdlmResourceInfo,
    lock: *mut UdlmLockInfo,
) -> c_int {
    guard(-1, || {
        // SAFETY: per this function's contract.
        let t = match unsafe { table(ls) } {
            Ok(t) => t,
            Err(rc) => return rc,
        };
        if lkid == 0 || lock.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        // SAFETY: per this function's contract.
        match unsafe { (t.query)(ls, lkid, std::ptr::null(), 0, res, lock, 1) } {
            1 => 0,
            -1 => -1,
            _ => {
                set_errno(libc::ENOENT);
                -1
            }
        }
    })
}
