//! The C API of libdlm, shared by `libdlm.so.3` and `libdlm_lt.so.3`.
//!
//! The cdylib crates in `compat/` export the symbols; each exported function
//! calls one function here inside [`guard`], which turns a panic into the
//! documented failure value with `errno` set, so nothing unwinds into C.
//! Behaviour follows spec §2: argument checks and errno values of §2.13,
//! the lksb protocol of §2.3, the pollable fd and dispatch of §2.8, AST
//! threads (§2.9), the `_wait` calls with their libdlm / libdlm_lt return
//! conventions (§2.6) and the default lockspace (§2.7).
//!
//! Decisions (spec §10 and where the reference hangs or crashes):
//! * NULL `lksb` or handle give -1/`EINVAL` (unlock calls: NULL handle is
//!   `ENOTCONN`, as in libdlm); an unknown or closed handle pointer is
//!   treated like NULL.
//! * The lksb is never touched on a BAST; LVB bytes are copied back only when
//!   the completing operation used `LKF_VALBLK`.
//! * `_wait` calls wait for their own lksb to leave `EINPROG`, looping on
//!   that predicate. In libdlm, with an AST thread running (and the caller
//!   not being it) the wait sleeps while that thread dispatches; otherwise
//!   the caller dispatches inline, as libdlm_lt always does (the reference
//!   would hang forever without a dispatcher).
//! * `_wait` calls that the reference would never return from — adopting an
//!   orphan, cancelling a lock with nothing to cancel — return at once
//!   (0 in both libraries) with `sb_status` left at `EINPROG`.
//! * A conversion, unlock or cancel through one handle of a lock taken
//!   through another handle of the same lockspace works as on the kernel
//!   (the completion goes to the lock's own handle); from another process
//!   it fails with ENOENT, where the kernel would carry the caller's
//!   pointers into the owner's process (node/mod.rs, `owner_acted_for`).
//! * An unlock `_wait` passes no argument, so the lock keeps its own AST
//!   routine and argument (spec §2.6, case 41: libdlm returns 0 with the
//!   final status in the lksb instead of hanging).

pub mod ext;

use crate::client::Connection;
use crate::node::sink::LocalLink;
use crate::proto::{Callback, InlineAsk, Request, UserArgs, CALLBACK_LEN};
use crate::sys;
use crate::types::{lkf, Errno, Lvb, Status, LOCKSPACE_LEN, LVB_LEN, RESNAME_MAXLEN};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, ThreadId};

/// Which library is calling: the threaded libdlm or libdlm_lt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Threaded,
    Lt,
}

/// `struct dlm_lksb` (spec §1.2).
#[repr(C)]
pub struct Lksb {
    pub sb_status: c_int,
    pub sb_lkid: u32,
    pub sb_flags: c_char,
    pub sb_lvbptr: *mut c_char,
}

/// A completion or blocking routine: `void fn(void *arg)`.
pub type AstFn = Option<unsafe extern "C" fn(*mut c_void)>;

/// Runs `f`; a panic becomes `fail` with `errno` = EIO.
pub fn guard<T>(fail: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            set_errno(libc::EIO);
            fail
        }
    }
}

pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

fn fail(e: Errno) -> c_int {
    set_errno(e.to_raw());
    -1
}

// ----- handles ------------------------------------------------------------

/// One open lockspace handle (`dlm_lshandle_t` points at it). It begins
/// with [`ext::HandleHead`], through which libudlm.so.1 finds the
/// extension calls.
#[repr(C)]
pub struct LsHandle {
    head: ext::HandleHead,
    conn: Mutex<Option<Connection>>,
    fd: c_int,
    /// Callbacks read from the event link but not yet delivered, grouped per
    /// lock like the kernel's per-handle list (spec §4.4).
    pending: Mutex<Pending>,
    /// Callbacks taken off `pending` whose routine is still running.
    delivering: AtomicU32,
    /// Embedded mode: the callbacks are here, and `fd` carries only a
    /// doorbell (node/sink.rs).
    local: Option<Arc<LocalLink>>,
    ast_thread: Mutex<Option<AstThread>>,
}

struct AstThread {
    join: Option<JoinHandle<()>>,
    id: ThreadId,
}

#[derive(Default)]
struct Pending {
    locks: VecDeque<((u32, u32), VecDeque<Callback>)>,
    /// Packets ever read from the event link (`proto::InlineAsk::seen`).
    received: u64,
}

impl Pending {
    fn push(&mut self, cb: Callback) {
        let key = (cb.lkid, cb.incarnation);
        match self.locks.iter_mut().find(|(k, _)| *k == key) {
            Some((_, q)) => q.push_back(cb),
            None => self.locks.push_back((key, VecDeque::from([cb]))),
        }
    }
    fn pop(&mut self) -> Option<Callback> {
        let (_, q) = self.locks.front_mut()?;
        let cb = q.pop_front();
        if q.is_empty() {
            self.locks.pop_front();
        }
        cb
    }
    fn clear(&mut self) {
        self.locks.clear();
    }
}

struct Registry {
    by_ptr: HashMap<usize, Arc<LsHandle>>,
    by_fd: HashMap<c_int, Arc<LsHandle>>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        Mutex::new(Registry {
            by_ptr: HashMap::new(),
            by_fd: HashMap::new(),
        })
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

fn lookup(ls: *mut c_void) -> Option<Arc<LsHandle>> {
    if ls.is_null() {
        return None;
    }
    registry().by_ptr.get(&(ls as usize)).cloned()
}

fn register(conn: Connection) -> *mut c_void {
    let fd = conn.event_fd();
    let local = conn.local_events();
    let h = Arc::new(LsHandle {
        head: ext::HandleHead {
            magic: ext::HANDLE_MAGIC,
            ops: &ext::EXT_OPS,
        },
        conn: Mutex::new(Some(conn)),
        fd,
        pending: Mutex::new(Pending::default()),
        delivering: AtomicU32::new(0),
        local,
        ast_thread: Mutex::new(None),
    });
    let ptr = Arc::as_ptr(&h) as *mut c_void;
    let mut r = registry();
    r.by_fd.insert(fd, Arc::clone(&h));
    r.by_ptr.insert(ptr as usize, h);
    ptr
}

fn unregister(ls: *mut c_void) -> Option<Arc<LsHandle>> {
    let mut r = registry();
    let h = r.by_ptr.remove(&(ls as usize))?;
    r.by_fd.remove(&h.fd);
    Some(h)
}

impl LsHandle {
    fn call(&self, req: &Request) -> Result<u64, Errno> {
        self.call_with(req).0
    }

    /// [`LsHandle::call`] for a request that may ask for its completion
    /// inline ([`InlineAsk`]).
    fn call_with(&self, req: &Request) -> (Result<u64, Errno>, Option<Callback>) {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        match conn.as_ref() {
            Some(c) => c.call_with(req),
            None => (Err(Errno::NotConn), None),
        }
    }

    /// What a `_wait` call may ask: its completion inline, when every
    /// callback read so far has been delivered and none is running (so
    /// that taking it out of the event link's order changes nothing).
    fn inline_ask(&self) -> Option<InlineAsk> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        (p.locks.is_empty() && self.delivering.load(Ordering::SeqCst) == 0).then(|| InlineAsk {
            seen: p.received,
            func: sync_ast as *const () as usize as u64,
        })
    }

    fn on_ast_thread(&self) -> bool {
        let t = self.ast_thread.lock().unwrap_or_else(|e| e.into_inner());
        t.as_ref()
            .is_some_and(|t| t.id == std::thread::current().id())
    }

    fn has_ast_thread(&self) -> bool {
        self.ast_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Reads what the event link holds into the pending list, without
    /// blocking. Returns false when the link is gone. `check_end`: an
    /// embedded handle with nothing queued reads its descriptor anyway, to
    /// see a shutdown of its own end (the AST thread's stop).
    fn drain_link(&self, pending: &mut Pending, check_end: bool) -> bool {
        if let Some(local) = &self.local {
            let t = local.take(self.fd, usize::MAX, check_end, |p| {
                pending.received += 1;
                if let Ok(cb) = Callback::decode(p) {
                    pending.push(cb);
                }
            });
            return t.alive;
        }
        // Many packets per system call: the node writes a batch's
        // callbacks together (node/sink.rs).
        let mut bufs = [[0u8; CALLBACK_LEN]; sys::PACKETS_PER_CALL];
        let mut lens = [0usize; sys::PACKETS_PER_CALL];
        loop {
            match sys::recv_packets(self.fd, &mut bufs, &mut lens) {
                Ok(0) => return false,
                Ok(got) => {
                    for (buf, &n) in bufs[..got].iter().zip(&lens[..got]) {
                        if n == 0 {
                            return false;
                        }
                        pending.received += 1;
                        if let Ok(cb) = Callback::decode(&buf[..n]) {
                            pending.push(cb);
                        }
                    }
                    if got < sys::PACKETS_PER_CALL {
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    /// Delivers the next callback, blocking for one when `block` is set.
    /// Ok(false): nothing was pending (non-blocking only).
    ///
    /// With `drain`, everything the link holds is read first so that
    /// callbacks are grouped per lock as the kernel delivers them; callers
    /// that drain (dispatch, the AST thread) keep going until nothing is
    /// left. Without it exactly one packet is read, so a `_wait` call that
    /// returns leaves the rest on the link, where poll still sees it.
    fn dispatch_one(&self, block: bool, drain: bool) -> Result<bool, Errno> {
        let next = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut alive = true;
            if drain {
                alive = self.drain_link(&mut p, block);
            }
            match p.pop() {
                Some(cb) => Some(cb),
                None if !alive => return Err(Errno::NotConn),
                None if drain => None,
                None => self.read_one(&mut p)?,
            }
            .inspect(|_| {
                self.delivering.fetch_add(1, Ordering::SeqCst);
            })
        };
        if let Some(cb) = next {
            // SAFETY: the callback carries pointers this process passed.
            unsafe { deliver(&cb) };
            self.delivering.fetch_sub(1, Ordering::SeqCst);
            return Ok(true);
        }
        if !block {
            return Ok(false);
        }
        match sys::poll_one(self.fd, false, -1) {
            Ok(_) => Ok(true),
            Err(_) => Err(Errno::Io),
        }
    }

    /// Reads one callback without blocking; Ok(None) when none is there.
    fn read_one(&self, pending: &mut Pending) -> Result<Option<Callback>, Errno> {
        if let Some(local) = &self.local {
            let mut cb = None;
            let t = local.take(self.fd, 1, true, |p| {
                pending.received += 1;
                cb = Callback::decode(p).ok();
            });
            return match (t.packets, t.alive) {
                (0, false) => Err(Errno::NotConn),
                _ => Ok(cb),
            };
        }
        let mut buf = [0u8; CALLBACK_LEN + 1];
        loop {
            match sys::recv(self.fd, &mut buf, true) {
                Ok(0) => return Err(Errno::NotConn),
                Ok(n) => {
                    pending.received += 1;
                    if let Ok(cb) = Callback::decode(&buf[..n]) {
                        return Ok(Some(cb));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(_) => return Err(Errno::NotConn),
            }
        }
    }

    fn stop_ast_thread(&self) {
        let t = self
            .ast_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut t) = t {
            sys::shutdown(self.fd);
            if t.id != std::thread::current().id() {
                if let Some(j) = t.join.take() {
                    let _ = j.join();
                }
            }
        }
    }
}

/// Wakes `_wait` callers after a delivery.
fn waiters() -> &'static (Mutex<u64>, Condvar) {
    static W: OnceLock<(Mutex<u64>, Condvar)> = OnceLock::new();
    W.get_or_init(|| (Mutex::new(0), Condvar::new()))
}

/// `_wait` callers asleep on [`waiters`]: a delivery with nobody asleep
/// costs no wake-up system call. A sleeper counts itself, under the mutex,
/// before it looks at its lksb; a delivery writes the lksb before it looks
/// at the count (both sequentially consistent), so either the sleeper sees
/// the status or the delivery sees the sleeper.
static SLEEPERS: AtomicU32 = AtomicU32::new(0);

/// Writes the lksb (completions only), then runs the routine.
///
/// # Safety
/// The pointers in `cb` must be ones this process passed with the lock.
unsafe fn deliver(cb: &Callback) {
    if !cb.blocking && cb.lksb != 0 {
        let lksb = cb.lksb as *mut Lksb;
        // SAFETY: the program passed this lksb and must keep it valid while
        // the operation is in progress (spec §2.6).
        unsafe {
            std::ptr::addr_of_mut!((*lksb).sb_lkid).write_volatile(cb.lkid);
            std::ptr::addr_of_mut!((*lksb).sb_flags).write_volatile(cb.sb_flags as c_char);
            if let Some(lvb) = &cb.lvb {
                let dst = std::ptr::addr_of!((*lksb).sb_lvbptr).read();
                if !dst.is_null() {
                    std::ptr::copy_nonoverlapping(lvb.as_ptr(), dst as *mut u8, LVB_LEN);
                }
            }
            std::ptr::addr_of_mut!((*lksb).sb_status).write_volatile(cb.status);
        }
    }
    if cb.func != 0 {
        // SAFETY: func is a `void (*)(void *)` the program passed.
        let f: unsafe extern "C" fn(*mut c_void) = unsafe { std::mem::transmute(cb.func as usize) };
        unsafe { f(cb.arg as usize as *mut c_void) };
    }
    if !cb.blocking {
        std::sync::atomic::fence(Ordering::SeqCst);
        if SLEEPERS.load(Ordering::SeqCst) > 0 {
            let (m, c) = waiters();
            *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            c.notify_all();
        }
    }
}

/// The routine `_wait` calls install: waiting is on the lksb, so it does
/// nothing (a later asynchronous unlock of such a lock calls no user code).
unsafe extern "C" fn sync_ast(_arg: *mut c_void) {}

fn lksb_status(lksb: *mut Lksb) -> c_int {
    // SAFETY: callers pass the lksb they validated as non-null.
    unsafe { std::ptr::addr_of!((*lksb).sb_status).read_volatile() }
}

/// Waits until the lksb leaves EINPROG (spec §2.6).
fn wait_for(h: &LsHandle, lksb: *mut Lksb, flavor: Flavor) -> Result<(), Errno> {
    loop {
        if lksb_status(lksb) != Status::EINPROG {
            return Ok(());
        }
        if flavor == Flavor::Threaded && h.has_ast_thread() && !h.on_ast_thread() {
            let (m, c) = waiters();
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            SLEEPERS.fetch_add(1, Ordering::SeqCst);
            if lksb_status(lksb) != Status::EINPROG {
                SLEEPERS.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
            let _ = c.wait_timeout(g, std::time::Duration::from_millis(100));
            SLEEPERS.fetch_sub(1, Ordering::SeqCst);
        } else {
            h.dispatch_one(true, false)?;
        }
    }
}

/// The return value of a `_wait` call once its operation completed.
fn wait_result(flavor: Flavor, lksb: *mut Lksb) -> c_int {
    let st = lksb_status(lksb);
    if flavor == Flavor::Lt && st != 0 && st != Status::EUNLOCK {
        set_errno(st);
        return -1;
    }
    0
}

// ----- versions -----------------------------------------------------------

/// # Safety
/// Non-null pointers must be valid for writing a `u32`.
pub unsafe fn version(maj: *mut u32, min: *mut u32, patch: *mut u32) {
    for (p, v) in [(maj, 6), (min, 0), (patch, 2)] {
        if !p.is_null() {
            // SAFETY: checked non-null; the caller promises validity.
            unsafe { *p = v };
        }
    }
}

// ----- lockspaces ---------------------------------------------------------

/// # Safety
/// `name` must be null or a NUL-terminated string.
pub unsafe fn new_lockspace(name: *const c_char, mode: u32, flags: u32) -> *mut c_void {
    let Some(name) = (unsafe { c_name(name) }) else {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    };
    if name.is_empty() || name.len() > LOCKSPACE_LEN {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    match Connection::open(name, Some((mode, flags))) {
        Ok(c) => register(c),
        Err(e) => {
            set_errno(e.to_raw());
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `name` must be null or a NUL-terminated string.
pub unsafe fn open_lockspace(name: *const c_char) -> *mut c_void {
    let Some(name) = (unsafe { c_name(name) }) else {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    };
    if name.is_empty() || name.len() > LOCKSPACE_LEN {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    match Connection::open(name, None) {
        Ok(c) => register(c),
        Err(e) => {
            set_errno(e.to_raw());
            std::ptr::null_mut()
        }
    }
}

unsafe fn c_name<'a>(name: *const c_char) -> Option<&'a [u8]> {
    if name.is_null() {
        return None;
    }
    // SAFETY: the caller passes a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(name) }.to_bytes())
}

fn take_connection(h: &LsHandle) -> Option<Connection> {
    h.stop_ast_thread();
    h.conn.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// `dlm_close_lockspace`: always 0 (spec §2.10).
pub fn close_lockspace(ls: *mut c_void) -> c_int {
    if let Some(h) = unregister(ls) {
        if let Some(c) = take_connection(&h) {
            c.close();
        }
    }
    0
}

/// `dlm_release_lockspace`: closes the handle, then asks for removal; the
/// answer to the removal is not reported (spec §2.10).
pub fn release_lockspace(ls: *mut c_void, force: c_int) -> c_int {
    let Some(h) = unregister(ls) else {
        return fail(Errno::Inval);
    };
    if let Some(c) = take_connection(&h) {
        let _ = c.release(if force != 0 { 2 } else { 0 });
    }
    0
}

pub fn ls_get_fd(ls: *mut c_void) -> c_int {
    match lookup(ls) {
        Some(h) => h.fd,
        None => fail(Errno::Inval),
    }
}

// ----- locking ------------------------------------------------------------

/// Everything a lock call passes, after the C signature.
pub struct LockCall {
    pub mode: u32,
    pub lksb: *mut Lksb,
    pub flags: u32,
    pub name: *const c_void,
    pub namelen: c_uint,
    pub ast: AstFn,
    pub astarg: *mut c_void,
    pub bast: AstFn,
    pub bastarg: *mut c_void,
    /// The `parent` argument: a lock id in a hierarchical lockspace,
    /// ignored elsewhere (as by the kernel).
    pub parent: u32,
    /// `dlm_ls_lockx`'s timeout in centiseconds; used with `LKF_TIMEOUT`.
    pub timeout_cs: u64,
}

/// `dlm_ls_lock` and friends. `range` non-null is ENOSYS (spec §2.4).
///
/// # Safety
/// Pointers in `call` must be valid as libdlm documents.
pub unsafe fn ls_lock(
    flavor: Flavor,
    ls: *mut c_void,
    mut call: LockCall,
    range: *mut c_void,
) -> c_int {
    if !range.is_null() {
        return fail(Errno::NoSys);
    }
    if call.lksb.is_null() {
        return fail(Errno::Inval);
    }
    let Some(h) = lookup(ls) else {
        return fail(Errno::Inval);
    };
    let lksb = call.lksb;
    // SAFETY: lksb checked non-null above.
    let lvbptr = unsafe { (*lksb).sb_lvbptr };
    if call.flags & lkf::VALBLK != 0 && lvbptr.is_null() {
        return fail(Errno::Inval);
    }
    let convert = call.flags & lkf::CONVERT != 0;
    if !convert && call.namelen as usize > RESNAME_MAXLEN {
        return fail(Errno::Inval);
    }
    if !convert && call.namelen > 0 && call.name.is_null() {
        return fail(Errno::Inval);
    }
    let wait = call.flags & lkf::WAIT != 0;
    if wait {
        call.ast = Some(sync_ast);
        call.astarg = lksb as *mut c_void;
    }
    let name = if convert || call.namelen == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller passes namelen readable bytes.
        unsafe { std::slice::from_raw_parts(call.name as *const u8, call.namelen as usize) }
            .to_vec()
    };
    let lvb: Option<Lvb> = if call.flags & lkf::VALBLK != 0 {
        let mut v = [0u8; LVB_LEN];
        // SAFETY: sb_lvbptr points at a 32-byte LVB (spec §5.5).
        unsafe { std::ptr::copy_nonoverlapping(lvbptr as *const u8, v.as_mut_ptr(), LVB_LEN) };
        Some(v)
    } else {
        None
    };
    // SAFETY: lksb checked non-null.
    let lkid = if convert {
        unsafe { (*lksb).sb_lkid }
    } else {
        0
    };
    unsafe { std::ptr::addr_of_mut!((*lksb).sb_status).write_volatile(Status::EINPROG) };
    let req = Request::Lock {
        mode: call.mode as u8,
        flags: call.flags & !lkf::WAIT,
        lkid,
        name,
        lvb,
        user: UserArgs {
            ast: call.ast.map_or(0, |f| f as usize as u64),
            astarg: call.astarg as usize as u64,
            bast: call.bast.map_or(0, |f| f as usize as u64),
            bastarg: call.bastarg as usize as u64,
            lksb: lksb as usize as u64,
        },
        tid: sys::cached_tid(),
        parent: call.parent,
        timeout_cs: call.timeout_cs,
        inline: if wait && (convert || call.flags & lkf::ORPHAN == 0) {
            h.inline_ask()
        } else {
            None
        },
    };
    if call.ast.is_none() {
        return fail(Errno::Inval);
    }
    let (reply, completion) = h.call_with(&req);
    match reply {
        Ok(id) => {
            if !convert {
                // SAFETY: lksb checked non-null.
                unsafe { std::ptr::addr_of_mut!((*lksb).sb_lkid).write_volatile(id as u32) };
            }
            if let Some(cb) = completion {
                // SAFETY: the completion carries this call's own lksb.
                unsafe { deliver(&cb) };
            }
            if !wait || (!convert && call.flags & lkf::ORPHAN != 0) {
                return 0;
            }
            match wait_for(&h, lksb, flavor) {
                Ok(()) => wait_result(flavor, lksb),
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}

/// `dlm_ls_unlock` (spec §2.5); `LKF_WAIT` makes it synchronous.
///
/// # Safety
/// `lksb` must be null or valid as libdlm documents.
pub unsafe fn ls_unlock(
    flavor: Flavor,
    ls: *mut c_void,
    lkid: u32,
    flags: u32,
    lksb: *mut Lksb,
    astarg: *mut c_void,
) -> c_int {
    if ls.is_null() {
        return fail(Errno::NotConn);
    }
    if lkid == 0 {
        return fail(Errno::Inval);
    }
    if lksb.is_null() {
        return fail(Errno::Inval);
    }
    let Some(h) = lookup(ls) else {
        return fail(Errno::NotConn);
    };
    // SAFETY: lksb checked non-null.
    let lvbptr = unsafe { (*lksb).sb_lvbptr };
    let lvb = if flags & lkf::VALBLK != 0 && !lvbptr.is_null() {
        let mut v = [0u8; LVB_LEN];
        // SAFETY: sb_lvbptr points at a 32-byte LVB.
        unsafe { std::ptr::copy_nonoverlapping(lvbptr as *const u8, v.as_mut_ptr(), LVB_LEN) };
        Some(v)
    } else {
        None
    };
    unsafe { std::ptr::addr_of_mut!((*lksb).sb_status).write_volatile(Status::EINPROG) };
    let wait = flags & lkf::WAIT != 0;
    let req = Request::Unlock {
        lkid,
        flags: flags & !lkf::WAIT,
        lvb,
        astarg: if wait { 0 } else { astarg as usize as u64 },
        lksb: lksb as usize as u64,
        inline: if wait { h.inline_ask() } else { None },
    };
    let (reply, completion) = h.call_with(&req);
    if let Some(cb) = &completion {
        // SAFETY: the completion carries this call's own lksb.
        unsafe { deliver(cb) };
    }
    match reply {
        Ok(silent) => {
            if !wait || silent == 1 {
                return 0;
            }
            match wait_for(&h, lksb, flavor) {
                Ok(()) => wait_result(flavor, lksb),
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}

pub fn deadlock_cancel(ls: *mut c_void, lkid: u32, flags: u32) -> c_int {
    if ls.is_null() {
        return fail(Errno::NotConn);
    }
    if lkid == 0 {
        return fail(Errno::Inval);
    }
    let Some(h) = lookup(ls) else {
        return fail(Errno::NotConn);
    };
    match h.call(&Request::DeadlockCancel { lkid, flags }) {
        Ok(_) => 0,
        Err(e) => fail(e),
    }
}

pub fn purge(ls: *mut c_void, nodeid: c_int, pid: c_int) -> c_int {
    if ls.is_null() {
        return fail(Errno::NotConn);
    }
    let Some(h) = lookup(ls) else {
        return fail(Errno::NotConn);
    };
    let tid = sys::cached_tid();
    match h.call(&Request::Purge {
        nodeid: nodeid as u32,
        pid: pid as u32,
        tid,
    }) {
        Ok(_) => {
            if pid as u32 == tid && (nodeid == 0 || nodeid as u32 == crate::client::local_node_id())
            {
                // Pending callbacks of this handle are discarded (spec §2.11).
                let mut p = h.pending.lock().unwrap_or_else(|e| e.into_inner());
                h.drain_link(&mut p, false);
                p.clear();
            }
            0
        }
        Err(e) => fail(e),
    }
}

/// `dlm_dispatch`: delivers every pending callback in the caller's thread;
/// 0 when the queue is empty (spec §2.8).
pub fn dispatch(fd: c_int) -> c_int {
    let known = registry().by_fd.get(&fd).cloned();
    let h = known.or_else(|| {
        // A duplicate of a handle's descriptor (dup(2)): dispatch for that
        // handle. An embedded handle's descriptor carries only a doorbell,
        // so reading the duplicate directly would find no callbacks.
        let id = sys::file_identity(fd)?;
        let r = registry();
        let h = r
            .by_fd
            .iter()
            .find(|(other, _)| sys::file_identity(**other) == Some(id));
        h.map(|(_, h)| Arc::clone(h))
    });
    match h {
        Some(h) => loop {
            match h.dispatch_one(false, true) {
                Ok(true) => continue,
                Ok(false) => return 0,
                Err(e) => return fail(e),
            }
        },
        None => dispatch_raw(fd),
    }
}

/// Dispatch on a descriptor that is no handle's: plain FIFO.
fn dispatch_raw(fd: c_int) -> c_int {
    let mut buf = [0u8; CALLBACK_LEN + 1];
    loop {
        match sys::recv(fd, &mut buf, true) {
            Ok(0) => return 0,
            Ok(n) => {
                if let Ok(cb) = Callback::decode(&buf[..n]) {
                    // SAFETY: callbacks carry pointers this process passed.
                    unsafe { deliver(&cb) };
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return 0,
            Err(e) => {
                set_errno(e.raw_os_error().unwrap_or(libc::EIO));
                return -1;
            }
        }
    }
}

// ----- AST threads (libdlm only) -------------------------------------------

/// `dlm_ls_pthread_init`: -1/EEXIST when the handle has a thread, else the
/// thread-creation result (spec §2.9).
pub fn ls_pthread_init(ls: *mut c_void) -> c_int {
    let Some(h) = lookup(ls) else {
        return fail(Errno::Inval);
    };
    start_ast_thread(&h)
}

fn start_ast_thread(h: &Arc<LsHandle>) -> c_int {
    let mut slot = h.ast_thread.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return fail(Errno::Exist);
    }
    let me = Arc::clone(h);
    match std::thread::Builder::new()
        .name("dlm-ast".into())
        .spawn(move || while me.dispatch_one(true, true).is_ok() {})
    {
        Ok(j) => {
            let id = j.thread().id();
            *slot = Some(AstThread { join: Some(j), id });
            0
        }
        Err(e) => e.raw_os_error().unwrap_or(libc::EAGAIN),
    }
}

// ----- the default lockspace -------------------------------------------------

fn default_slot() -> std::sync::MutexGuard<'static, Option<usize>> {
    static D: Mutex<Option<usize>> = Mutex::new(None);
    D.lock().unwrap_or_else(|e| e.into_inner())
}

/// The default lockspace's handle, if one is open.
pub fn default_handle() -> Option<*mut c_void> {
    default_slot().map(|p| p as *mut c_void)
}

/// Opens (or creates with mode 0600) the lockspace "default" (spec §2.7).
pub fn open_default() -> Result<*mut c_void, Errno> {
    let mut slot = default_slot();
    if let Some(p) = *slot {
        return Ok(p as *mut c_void);
    }
    let conn = match Connection::open(b"default", None) {
        Ok(c) => c,
        Err(_) => Connection::open(b"default", Some((0o600, 0)))?,
    };
    let p = register(conn);
    *slot = Some(p as usize);
    Ok(p)
}

pub fn pthread_init() -> c_int {
    let ls = match open_default() {
        Ok(ls) => ls,
        Err(e) => return fail(e),
    };
    let Some(h) = lookup(ls) else {
        return fail(Errno::NotConn);
    };
    if h.has_ast_thread() {
        return fail(Errno::Exist);
    }
    let r = start_ast_thread(&h);
    if r != 0 {
        *default_slot() = None;
        close_lockspace(ls);
        return -1;
    }
    0
}

pub fn pthread_cleanup() -> c_int {
    let Some(p) = default_slot().take() else {
        return 0;
    };
    close_lockspace(p as *mut c_void);
    0
}

/// `lock_resource` (spec §2.7): synchronous, on the default lockspace with
/// its AST thread; errno is the final status, 0 on success.
///
/// # Safety
/// `name` must be a NUL-terminated string; `lockid` null or valid.
pub unsafe fn lock_resource(
    name: *const c_char,
    mode: c_int,
    flags: c_int,
    lockid: *mut c_int,
) -> c_int {
    if lockid.is_null() || name.is_null() {
        return fail(Errno::Inval);
    }
    if default_handle().is_none() && pthread_init() != 0 {
        return -1;
    }
    let Some(ls) = default_handle() else {
        return fail(Errno::NotConn);
    };
    let mut lksb = Lksb {
        sb_status: 0,
        sb_lkid: 0,
        sb_flags: 0,
        sb_lvbptr: std::ptr::null_mut(),
    };
    if flags as u32 & lkf::CONVERT != 0 {
        // SAFETY: lockid checked non-null.
        lksb.sb_lkid = unsafe { *lockid } as u32;
    }
    // SAFETY: name is a C string.
    let n = unsafe { CStr::from_ptr(name) }.to_bytes();
    let call = LockCall {
        mode: mode as u32,
        lksb: &mut lksb,
        flags: flags as u32 | lkf::WAIT,
        name: n.as_ptr() as *const c_void,
        namelen: n.len() as c_uint,
        ast: None,
        astarg: std::ptr::null_mut(),
        bast: None,
        bastarg: std::ptr::null_mut(),
        parent: 0,
        timeout_cs: 0,
    };
    // SAFETY: every pointer in call is valid for the call's duration.
    if unsafe { ls_lock(Flavor::Threaded, ls, call, std::ptr::null_mut()) } != 0 {
        return -1;
    }
    // SAFETY: lockid checked non-null.
    unsafe { *lockid = lksb.sb_lkid as c_int };
    set_errno(lksb.sb_status);
    if lksb.sb_status == 0 {
        0
    } else {
        -1
    }
}

/// `unlock_resource`: errno is the final status (65538 on success), and
/// -107 when no default lockspace is open — both as libdlm does.
pub fn unlock_resource(lockid: c_int) -> c_int {
    let Some(ls) = default_handle() else {
        set_errno(-libc::ENOTCONN);
        return -1;
    };
    let mut lksb = Lksb {
        sb_status: 0,
        sb_lkid: 0,
        sb_flags: 0,
        sb_lvbptr: std::ptr::null_mut(),
    };
    // SAFETY: lksb lives for the whole synchronous call.
    let r = unsafe {
        ls_unlock(
            Flavor::Threaded,
            ls,
            lockid as u32,
            lkf::WAIT,
            &mut lksb,
            std::ptr::null_mut(),
        )
    };
    if r != 0 {
        return -1;
    }
    set_errno(lksb.sb_status);
    if lksb.sb_status == Status::EUNLOCK {
        0
    } else {
        -1
    }
}

/// The default lockspace for `dlm_lock`-style calls, opened on demand.
pub fn default_or_open() -> Result<*mut c_void, Errno> {
    open_default()
}
