//! udlm's extension calls (include/udlm.h) as the lockspace handles of
//! `libdlm.so.3` / `libdlm_lt.so.3` serve them.
//!
//! Those two libraries export exactly the symbols of Debian's libdlm, so
//! the extension functions live in a library of their own, `libudlm.so.1`
//! (compat/libudlm). It reaches the handle's connection through the handle
//! itself: every handle starts with [`HandleHead`], a magic number and a
//! pointer to [`ExtOps`], the table of extension entry points of the
//! library that made the handle. A pointer that does not start with the
//! magic (a handle of the real libdlm, say) is refused with ENOSYS.

use super::{fail, guard, lookup};
use crate::node::inspect::ResourceView;
use crate::types::{Errno, LVB_LEN, RESNAME_MAXLEN};
use std::ffi::{c_char, c_int, c_uint, c_void};

/// The first bytes of every udlm lockspace handle.
pub const HANDLE_MAGIC: u64 = u64::from_le_bytes(*b"udlm\x01hdl");
/// [`ExtOps::version`] of this build; a caller needing more refuses older.
pub const EXT_VERSION: u32 = 1;

/// What a udlm lockspace handle begins with.
#[repr(C)]
pub struct HandleHead {
    pub magic: u64,
    pub ops: &'static ExtOps,
}

/// The extension entry points of the library that made a handle.
#[repr(C)]
pub struct ExtOps {
    pub version: u32,
    /// `udlm_query_resource` (`lkid` 0) and `udlm_query_lock` (`lkid`).
    pub query: unsafe extern "C" fn(
        ls: *mut c_void,
        lkid: u32,
        name: *const c_void,
        namelen: c_uint,
        res: *mut UdlmResourceInfo,
        locks: *mut UdlmLockInfo,
        max_locks: c_uint,
    ) -> c_int,
}

pub static EXT_OPS: ExtOps = ExtOps {
    version: EXT_VERSION,
    query: ext_query,
};

/// `struct udlm_lock_info` of include/udlm.h.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UdlmLockInfo {
    pub nodeid: u32,
    pub lkid: u32,
    pub pid: u32,
    pub flags: u32,
    pub grmode: i8,
    pub rqmode: i8,
    pub queue: u8,
    pub orphan: u8,
}

/// `struct udlm_resource_info` of include/udlm.h.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UdlmResourceInfo {
    pub master_nodeid: u32,
    pub lvb_valid: u32,
    pub has_lvb: u32,
    pub nlocks: u32,
    pub lvb: [c_char; LVB_LEN],
}

/// The extension table of a handle made by a udlm library, if `ls` is one.
///
/// # Safety
/// `ls` must be null or point to at least 16 readable bytes (any lockspace
/// handle of udlm's or the real libdlm does).
pub unsafe fn ops_of(ls: *mut c_void) -> Option<&'static ExtOps> {
    if ls.is_null() {
        return None;
    }
    let head = ls as *const HandleHead;
    // SAFETY: the caller passes a readable handle; the magic is read
    // before the pointer is trusted.
    unsafe {
        if std::ptr::addr_of!((*head).magic).read_unaligned() != HANDLE_MAGIC {
            return None;
        }
        Some((*head).ops)
    }
}

/// Writes `v` to the caller's structures; returns the locks written.
///
/// # Safety
/// `res` valid; `locks` valid for `max` entries (or `max` 0).
unsafe fn fill(
    v: &ResourceView,
    res: *mut UdlmResourceInfo,
    locks: *mut UdlmLockInfo,
    max: usize,
) -> usize {
    let mut lvb = [0 as c_char; LVB_LEN];
    if let Some(b) = v.lvb {
        for (d, s) in lvb.iter_mut().zip(b) {
            *d = s as c_char;
        }
    }
    // SAFETY: checked non-null by the caller; valid per the contract.
    unsafe {
        res.write_unaligned(UdlmResourceInfo {
            master_nodeid: v.master,
            lvb_valid: v.lvb_valid as u32,
            has_lvb: v.lvb.is_some() as u32,
            nlocks: v.nlocks,
            lvb,
        });
    }
    let n = v.locks.len().min(max);
    for (i, l) in v.locks.iter().take(n).enumerate() {
        // SAFETY: i < max, within the caller's array.
        unsafe {
            locks.add(i).write_unaligned(UdlmLockInfo {
                nodeid: l.node,
                lkid: l.lkid,
                pid: l.pid,
                flags: l.flags,
                grmode: l.granted,
                rqmode: l.requested,
                queue: l.queue,
                orphan: l.orphan as u8,
            });
        }
    }
    n
}

/// [`ExtOps::query`]: -1 with errno EINVAL (bad arguments), ENOENT (no
/// such resource or lock), EAGAIN (the master did not answer in time).
unsafe extern "C" fn ext_query(
    ls: *mut c_void,
    lkid: u32,
    name: *const c_void,
    namelen: c_uint,
    res: *mut UdlmResourceInfo,
    locks: *mut UdlmLockInfo,
    max_locks: c_uint,
) -> c_int {
    guard(-1, || {
        if res.is_null() || (locks.is_null() && max_locks > 0) {
            return fail(Errno::Inval);
        }
        let name: &[u8] = if lkid != 0 {
            &[]
        } else if name.is_null() || namelen == 0 || namelen as usize > RESNAME_MAXLEN {
            return fail(Errno::Inval);
        } else {
            // SAFETY: the caller passes namelen readable bytes.
            unsafe { std::slice::from_raw_parts(name as *const u8, namelen as usize) }
        };
        let Some(h) = lookup(ls) else {
            return fail(Errno::Inval);
        };
        let answer = {
            let conn = h.conn.lock().unwrap_or_else(|e| e.into_inner());
            match conn.as_ref() {
                Some(c) => c.inspect(lkid, name),
                None => Err(Errno::Inval),
            }
        };
        match answer {
            // SAFETY: pointers checked above, sizes per the contract.
            Ok(v) => unsafe { fill(&v, res, locks, max_locks as usize) as c_int },
            Err(e) => fail(e),
        }
    })
}
