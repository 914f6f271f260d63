//! corosync as udlm's membership and quorum source (cargo feature
//! `corosync`; Debian's libcpg-dev, libquorum-dev, libcmap-dev).
//!
//! When corosync runs on the host at start, `udlmd` takes from it:
//! * the nodes and their addresses: corosync's `nodelist` (cmap keys
//!   `nodelist.node.N.nodeid` and `ring0_addr`), at udlm's `port`; and this
//!   node's id (its corosync node id). `udlm reload` reads them again.
//! * quorum: votequorum's verdict replaces udlm's majority of connected
//!   nodes, both for starting recovery generations and for this node's own
//!   fencing (lease_ms / 2 without quorum). Losing the connection to
//!   corosync counts as losing quorum.
//! * liveness: the members of the CPG group `udlm` are the nodes where udlm
//!   runs; a node out of the group counts as lost from that moment, even if
//!   udlm's own TCP session with it is still up (corosync's heartbeats
//!   decide, not udlm's). Safety is unchanged: its locks are recovered once
//!   its lease has run out, or at once when it is declared fenced.
//!
//! Without corosync running at start, nothing here is used and udlm runs
//! on its config file alone. The FFI is declared by hand from corosync's
//! headers (3.x); every call's result is checked, and the callbacks only
//! record what they are told in a thread-local list, applied to the node
//! after each dispatch.

use super::Node;
use crate::cluster::config::NodeEntry;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type CsError = c_int;
const CS_OK: CsError = 1;
const CS_DISPATCH_ALL: c_int = 2;
const CS_TRACK_CHANGES: c_uint = 2;
const CS_TRACK_CURRENT: c_uint = 1;

/// The CPG group of udlm's nodes.
const GROUP: &[u8] = b"udlm";
/// Most nodes read from corosync's node list.
const MAX_NODES: usize = super::control::MAX_NODES;

#[repr(C)]
struct CpgName {
    length: u32,
    value: [c_char; 128],
}

#[repr(C)]
struct CpgAddress {
    nodeid: u32,
    pid: u32,
    reason: u32,
}

type QuorumNotifyFn = extern "C" fn(u64, u32, u64, u32, *mut u32);
type CpgDeliverFn = extern "C" fn(u64, *const CpgName, u32, u32, *mut c_void, usize);
type CpgConfchgFn = extern "C" fn(
    u64,
    *const CpgName,
    *const CpgAddress,
    usize,
    *const CpgAddress,
    usize,
    *const CpgAddress,
    usize,
);

#[repr(C)]
struct QuorumCallbacks {
    quorum_notify_fn: Option<QuorumNotifyFn>,
}

#[repr(C)]
struct CpgCallbacks {
    cpg_deliver_fn: Option<CpgDeliverFn>,
    cpg_confchg_fn: Option<CpgConfchgFn>,
}

#[link(name = "cmap")]
extern "C" {
    fn cmap_initialize(handle: *mut u64) -> CsError;
    fn cmap_finalize(handle: u64) -> CsError;
    fn cmap_get_uint32(handle: u64, key: *const c_char, value: *mut u32) -> CsError;
    fn cmap_get_string(handle: u64, key: *const c_char, value: *mut *mut c_char) -> CsError;
}

#[link(name = "quorum")]
extern "C" {
    fn quorum_initialize(handle: *mut u64, cb: *mut QuorumCallbacks, qtype: *mut u32) -> CsError;
    fn quorum_finalize(handle: u64) -> CsError;
    fn quorum_fd_get(handle: u64, fd: *mut c_int) -> CsError;
    fn quorum_dispatch(handle: u64, how: c_int) -> CsError;
    fn quorum_trackstart(handle: u64, flags: c_uint) -> CsError;
}

#[link(name = "cpg")]
extern "C" {
    fn cpg_initialize(handle: *mut u64, cb: *mut CpgCallbacks) -> CsError;
    fn cpg_finalize(handle: u64) -> CsError;
    fn cpg_fd_get(handle: u64, fd: *mut c_int) -> CsError;
    fn cpg_dispatch(handle: u64, how: c_int) -> CsError;
    fn cpg_join(handle: u64, group: *const CpgName) -> CsError;
    fn cpg_local_get(handle: u64, nodeid: *mut c_uint) -> CsError;
}

/// What corosync says of the cluster at start.
pub struct CorosyncNodes {
    pub local_id: u32,
    pub nodes: Vec<NodeEntry>,
}

/// Reads corosync's node list and this node's id; `None` when corosync
/// does not run here (or has no node list).
pub fn read_nodelist() -> Option<CorosyncNodes> {
    let mut h: u64 = 0;
    // SAFETY: h is a valid out pointer.
    if unsafe { cmap_initialize(&mut h) } != CS_OK {
        return None;
    }
    let mut nodes = Vec::new();
    for i in 0..MAX_NODES {
        let key = CString::new(format!("nodelist.node.{i}.nodeid")).expect("no NUL");
        let mut id: u32 = 0;
        // SAFETY: key is a C string, id a valid out pointer.
        if unsafe { cmap_get_uint32(h, key.as_ptr(), &mut id) } != CS_OK {
            break;
        }
        let key = CString::new(format!("nodelist.node.{i}.ring0_addr")).expect("no NUL");
        let mut p: *mut c_char = std::ptr::null_mut();
        // SAFETY: key is a C string, p a valid out pointer.
        if unsafe { cmap_get_string(h, key.as_ptr(), &mut p) } != CS_OK || p.is_null() {
            continue;
        }
        // SAFETY: cmap returned a NUL-terminated string allocated with malloc.
        let addr = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        // SAFETY: p came from malloc inside cmap_get_string.
        unsafe { libc::free(p as *mut c_void) };
        nodes.push(NodeEntry {
            id,
            addr,
            port: None,
            line: 0,
        });
    }
    // SAFETY: h was initialised above.
    unsafe { cmap_finalize(h) };
    let local_id = local_node_id()?;
    if nodes.is_empty() {
        return None;
    }
    Some(CorosyncNodes { local_id, nodes })
}

fn local_node_id() -> Option<u32> {
    let mut cb = CpgCallbacks {
        cpg_deliver_fn: None,
        cpg_confchg_fn: None,
    };
    let mut h: u64 = 0;
    // SAFETY: valid out pointer and callbacks (copied by the library).
    if unsafe { cpg_initialize(&mut h, &mut cb) } != CS_OK {
        return None;
    }
    let mut id: c_uint = 0;
    // SAFETY: h is initialised, id a valid out pointer.
    let ok = unsafe { cpg_local_get(h, &mut id) } == CS_OK;
    // SAFETY: h is initialised.
    unsafe { cpg_finalize(h) };
    ok.then_some(id)
}

/// What the callbacks heard during one dispatch.
enum Event {
    Quorate(bool),
    Group(Vec<u32>),
}

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn on_quorum(_h: u64, quorate: u32, _seq: u64, _n: u32, _list: *mut u32) {
    EVENTS.with(|e| e.borrow_mut().push(Event::Quorate(quorate != 0)));
}

extern "C" fn on_deliver(_: u64, _: *const CpgName, _: u32, _: u32, _: *mut c_void, _: usize) {}

extern "C" fn on_confchg(
    _h: u64,
    _group: *const CpgName,
    members: *const CpgAddress,
    n: usize,
    _left: *const CpgAddress,
    _nl: usize,
    _joined: *const CpgAddress,
    _nj: usize,
) {
    let ids: Vec<u32> = if members.is_null() {
        Vec::new()
    } else {
        // SAFETY: corosync passes `n` entries at `members` for the call.
        unsafe { std::slice::from_raw_parts(members, n.min(1024)) }
            .iter()
            .map(|a| a.nodeid)
            .collect()
    };
    EVENTS.with(|e| e.borrow_mut().push(Event::Group(ids)));
}

/// One connection to corosync: quorum tracking and the CPG group.
struct Session {
    quorum: u64,
    cpg: u64,
}

impl Session {
    fn open() -> Option<Session> {
        let mut qcb = QuorumCallbacks {
            quorum_notify_fn: Some(on_quorum),
        };
        let mut ccb = CpgCallbacks {
            cpg_deliver_fn: Some(on_deliver),
            cpg_confchg_fn: Some(on_confchg),
        };
        let (mut q, mut c, mut qtype) = (0u64, 0u64, 0u32);
        // SAFETY: valid out pointers; the callbacks are copied.
        if unsafe { quorum_initialize(&mut q, &mut qcb, &mut qtype) } != CS_OK {
            return None;
        }
        // SAFETY: q is initialised.
        if unsafe { quorum_trackstart(q, CS_TRACK_CHANGES | CS_TRACK_CURRENT) } != CS_OK {
            // SAFETY: q is initialised.
            unsafe { quorum_finalize(q) };
            return None;
        }
        // SAFETY: valid out pointer; the callbacks are copied.
        if unsafe { cpg_initialize(&mut c, &mut ccb) } != CS_OK {
            // SAFETY: q is initialised.
            unsafe { quorum_finalize(q) };
            return None;
        }
        let mut name = CpgName {
            length: GROUP.len() as u32,
            value: [0; 128],
        };
        for (d, s) in name.value.iter_mut().zip(GROUP) {
            *d = *s as c_char;
        }
        // SAFETY: c is initialised and name a valid group name.
        if unsafe { cpg_join(c, &name) } != CS_OK {
            // SAFETY: both are initialised.
            unsafe {
                cpg_finalize(c);
                quorum_finalize(q);
            }
            return None;
        }
        Some(Session { quorum: q, cpg: c })
    }

    /// Waits up to a second for news and dispatches it; false when the
    /// connection to corosync is gone.
    fn dispatch(&self) -> bool {
        let (mut qfd, mut cfd): (c_int, c_int) = (-1, -1);
        // SAFETY: handles are initialised, valid out pointers.
        let ok = unsafe {
            quorum_fd_get(self.quorum, &mut qfd) == CS_OK && cpg_fd_get(self.cpg, &mut cfd) == CS_OK
        };
        if !ok {
            return false;
        }
        let mut fds = [
            libc::pollfd {
                fd: qfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: cfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
        if n < 0 {
            return std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        }
        if fds
            .iter()
            .any(|f| f.revents & (libc::POLLHUP | libc::POLLERR) != 0)
        {
            return false;
        }
        // SAFETY: handles are initialised.
        unsafe {
            if fds[0].revents != 0 && quorum_dispatch(self.quorum, CS_DISPATCH_ALL) != CS_OK {
                return false;
            }
            if fds[1].revents != 0 && cpg_dispatch(self.cpg, CS_DISPATCH_ALL) != CS_OK {
                return false;
            }
        }
        true
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: both handles were initialised by open.
        unsafe {
            cpg_finalize(self.cpg);
            quorum_finalize(self.quorum);
        }
    }
}

/// Follows corosync for `node` in a thread of its own: quorum and the CPG
/// group go to the node as they change. While corosync cannot be reached
/// the node has no quorum; the thread tries again every second.
pub fn follow(node: Arc<Mutex<Node>>) {
    let _ = std::thread::Builder::new()
        .name("udlm-corosync".into())
        .spawn(move || {
            let lock = || node.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(s) = Session::open() {
                    eprintln!("udlmd: following corosync (quorum, CPG group udlm)");
                    while s.dispatch() {
                        let events = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
                        for ev in events {
                            match ev {
                                Event::Quorate(q) => lock().set_external_quorum(q),
                                Event::Group(ids) => lock().set_external_group(&ids),
                            }
                        }
                    }
                    eprintln!("udlmd: lost the connection to corosync: no quorum until it is back");
                }
                lock().set_external_quorum(false);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
}

/// `udlm status`'s account of where membership comes from.
pub fn membership_source() -> String {
    "{\"source\":\"corosync\",\"file\":null,\"changes\":\"corosync's nodelist (udlm reload reads it again), udlm node add/remove\",\"liveness\":\"corosync's CPG group udlm, then udlm leases\",\"quorum\":\"corosync votequorum\"}".to_string()
}
