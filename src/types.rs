//! The vocabulary shared by every layer: modes, lock ids, flags, statuses,
//! resource names, lock value blocks and owners.
//!
//! Numeric values are the ABI of `libdlm.h` (spec §1) and must never change.
//! One idea has one name everywhere: `Mode`, `LockId`, `ResName`, `Lvb`,
//! `Status`, `Owner`, `Errno`.

use std::fmt;

/// Length of a user lock value block (spec §1.1).
pub const LVB_LEN: usize = 32;
/// Longest resource name, in bytes (spec §1.1).
pub const RESNAME_MAXLEN: usize = 64;
/// Longest lockspace name, in bytes (spec §1.1).
pub const LOCKSPACE_LEN: usize = 64;

/// A lock value block: 32 opaque bytes.
pub type Lvb = [u8; LVB_LEN];

/// The six lock modes (spec §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mode {
    Nl = 0,
    Cr = 1,
    Cw = 2,
    Pr = 3,
    Pw = 4,
    Ex = 5,
}

impl Mode {
    pub const ALL: [Mode; 6] = [Mode::Nl, Mode::Cr, Mode::Cw, Mode::Pr, Mode::Pw, Mode::Ex];

    /// The mode for a raw value, or `None` when it is out of range.
    pub fn from_raw(raw: i64) -> Option<Mode> {
        match raw {
            0 => Some(Mode::Nl),
            1 => Some(Mode::Cr),
            2 => Some(Mode::Cw),
            3 => Some(Mode::Pr),
            4 => Some(Mode::Pw),
            5 => Some(Mode::Ex),
            _ => None,
        }
    }

    /// Whether a lock granted in `self` lets another be granted in `other`
    /// (spec §3.1; the matrix is symmetric).
    pub fn compatible(self, other: Mode) -> bool {
        const C: [[bool; 6]; 6] = [
            [true, true, true, true, true, true],
            [true, true, true, true, true, false],
            [true, true, true, false, false, false],
            [true, true, false, true, false, false],
            [true, true, false, false, false, false],
            [true, false, false, false, false, false],
        ];
        C[self as usize][other as usize]
    }

    pub fn name(self) -> &'static str {
        ["NL", "CR", "CW", "PR", "PW", "EX"][self as usize]
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lock id: unique among the live locks of a lockspace on one node;
/// never 0 (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockId(pub u32);

/// Who a lock belongs to: one open lockspace handle (spec §6.1). The node
/// hands these out; the engine only compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner(pub u64);

/// `LKF_*` request flags (spec §1.4).
pub mod lkf {
    pub const NOQUEUE: u32 = 0x0000_0001;
    pub const CANCEL: u32 = 0x0000_0002;
    pub const CONVERT: u32 = 0x0000_0004;
    pub const VALBLK: u32 = 0x0000_0008;
    pub const QUECVT: u32 = 0x0000_0010;
    pub const IVVALBLK: u32 = 0x0000_0020;
    pub const CONVDEADLK: u32 = 0x0000_0040;
    pub const PERSISTENT: u32 = 0x0000_0080;
    pub const NODLCKWT: u32 = 0x0000_0100;
    pub const NODLCKBLK: u32 = 0x0000_0200;
    pub const EXPEDITE: u32 = 0x0000_0400;
    pub const NOQUEUEBAST: u32 = 0x0000_0800;
    pub const HEADQUE: u32 = 0x0000_1000;
    pub const NOORDER: u32 = 0x0000_2000;
    pub const ORPHAN: u32 = 0x0000_4000;
    pub const ALTPR: u32 = 0x0000_8000;
    pub const ALTCW: u32 = 0x0001_0000;
    pub const FORCEUNLOCK: u32 = 0x0002_0000;
    pub const TIMEOUT: u32 = 0x0004_0000;
    /// Library-only: "wait for the outcome"; never reaches the node.
    pub const WAIT: u32 = 0x8000_0000;
    /// The only flags an unlock may carry (spec §2.5).
    pub const UNLOCK_MASK: u32 = CANCEL | VALBLK | IVVALBLK | FORCEUNLOCK;
}

/// `DLM_SBF_*` status-block flags (spec §1.5).
pub mod sbf {
    pub const DEMOTED: u8 = 0x01;
    pub const VALNOTVALID: u8 = 0x02;
    pub const ALTMODE: u8 = 0x04;
}

/// `DLM_LSFL_*` lockspace flags (spec §1.6).
pub mod lsfl {
    pub const TIMEWARN: u32 = 0x2;
    pub const FS: u32 = 0x4;
    pub const NEWEXCL: u32 = 0x8;
    /// Kernel-internal; refused for user lockspaces.
    pub const SOFTIRQ: u32 = 0x10;
    /// udlm extensions (include/udlm.h), in bits the kernel never used:
    /// `LKF_TIMEOUT` takes effect in this lockspace.
    pub const UDLM_TIMEOUT: u32 = 0x0001_0000;
    /// The `parent` argument of a lock request names a parent lock.
    pub const UDLM_HIERARCHY: u32 = 0x0002_0000;
}

/// The outcome of an operation as a libdlm caller sees it in `sb_status`
/// (spec §1.7): always the positive value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Granted,
    Again,
    Deadlock,
    Cancelled,
    Unlocked,
    /// A request or conversion not granted within its `LKF_TIMEOUT`
    /// (a udlm extension, opt-in per lockspace; see include/udlm.h).
    TimedOut,
}

impl Status {
    pub const EINPROG: i32 = 0x10003;
    pub const ECANCEL: i32 = 0x10001;
    pub const EUNLOCK: i32 = 0x10002;

    pub fn to_user(self) -> i32 {
        match self {
            Status::Granted => 0,
            Status::Again => libc::EAGAIN,
            Status::Deadlock => libc::EDEADLK,
            Status::Cancelled => Self::ECANCEL,
            Status::Unlocked => Self::EUNLOCK,
            Status::TimedOut => libc::ETIMEDOUT,
        }
    }

    pub fn from_user(v: i32) -> Option<Status> {
        Some(match v {
            0 => Status::Granted,
            libc::EAGAIN => Status::Again,
            libc::EDEADLK => Status::Deadlock,
            Self::ECANCEL => Status::Cancelled,
            Self::EUNLOCK => Status::Unlocked,
            libc::ETIMEDOUT => Status::TimedOut,
            _ => return None,
        })
    }
}

/// An error returned synchronously by a call (what becomes `-1`/`errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    Inval,
    NoEnt,
    Busy,
    Again,
    Exist,
    NoSys,
    NotConn,
    Perm,
    Acces,
    NoMem,
    Proto,
    NotEmpty,
    Io,
}

impl Errno {
    pub fn to_raw(self) -> i32 {
        match self {
            Errno::Inval => libc::EINVAL,
            Errno::NoEnt => libc::ENOENT,
            Errno::Busy => libc::EBUSY,
            Errno::Again => libc::EAGAIN,
            Errno::Exist => libc::EEXIST,
            Errno::NoSys => libc::ENOSYS,
            Errno::NotConn => libc::ENOTCONN,
            Errno::Perm => libc::EPERM,
            Errno::Acces => libc::EACCES,
            Errno::NoMem => libc::ENOMEM,
            Errno::Proto => libc::EPROTO,
            Errno::NotEmpty => libc::ENOTEMPTY,
            Errno::Io => libc::EIO,
        }
    }

    pub fn from_raw(v: i32) -> Errno {
        match v {
            libc::EINVAL => Errno::Inval,
            libc::ENOENT => Errno::NoEnt,
            libc::EBUSY => Errno::Busy,
            libc::EAGAIN => Errno::Again,
            libc::EEXIST => Errno::Exist,
            libc::ENOSYS => Errno::NoSys,
            libc::ENOTCONN => Errno::NotConn,
            libc::EPERM => Errno::Perm,
            libc::EACCES => Errno::Acces,
            libc::ENOMEM => Errno::NoMem,
            libc::EPROTO => Errno::Proto,
            libc::ENOTEMPTY => Errno::NotEmpty,
            _ => Errno::Io,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (errno {})", self, self.to_raw())
    }
}

impl std::error::Error for Errno {}

/// A resource name: the exact bytes and length, 0 to 64 bytes (spec §2.4).
/// Stored inline so that a resource costs no extra allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResName {
    len: u8,
    bytes: [u8; RESNAME_MAXLEN],
}

impl ResName {
    /// `None` when the name is longer than 64 bytes.
    pub fn new(name: &[u8]) -> Option<ResName> {
        if name.len() > RESNAME_MAXLEN {
            return None;
        }
        let mut bytes = [0u8; RESNAME_MAXLEN];
        bytes[..name.len()].copy_from_slice(name);
        Some(ResName {
            len: name.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for ResName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_matrix_is_symmetric_and_matches_spec_3_1() {
        for a in Mode::ALL {
            for b in Mode::ALL {
                assert_eq!(a.compatible(b), b.compatible(a), "{a} {b}");
            }
            assert!(Mode::Nl.compatible(a));
        }
        assert!(!Mode::Cw.compatible(Mode::Pr));
        assert!(Mode::Cr.compatible(Mode::Pw));
        assert!(!Mode::Cr.compatible(Mode::Ex));
        assert!(Mode::Pr.compatible(Mode::Pr));
        assert!(!Mode::Pw.compatible(Mode::Pw));
    }

    #[test]
    fn resname_keeps_exact_bytes_and_length() {
        assert_eq!(ResName::new(b"").unwrap().as_bytes(), b"");
        assert_ne!(ResName::new(b"A").unwrap(), ResName::new(b"A\0").unwrap());
        assert!(ResName::new(&[1u8; 64]).is_some());
        assert!(ResName::new(&[1u8; 65]).is_none());
    }

    #[test]
    fn statuses_are_the_positive_user_values() {
        assert_eq!(Status::Granted.to_user(), 0);
        assert_eq!(Status::Again.to_user(), 11);
        assert_eq!(Status::Deadlock.to_user(), 35);
        assert_eq!(Status::Cancelled.to_user(), 65537);
        assert_eq!(Status::Unlocked.to_user(), 65538);
    }
}
