//! Engine micro-benchmark (a program, not a test).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-tests cargo run --release --example engine_bench
//! ```
//!
//! Prints, single-threaded and for the engine alone (no node, no I/O):
//! * uncontended lock+unlock pairs per second and ns per pair (request EX,
//!   drain the events, unlock, drain the events) for names from a small
//!   rotating set, for a fresh name every time, and for a rotating set whose
//!   resources are kept alive by an NL lock each;
//! * heap bytes per granted lock and per resource with 1,000,000 locks held,
//!   measured by a counting `#[global_allocator]` around `System`
//!   (1,000,000 locks on 1,000,000 names, and 1,000,000 locks on 1,000 names).
//!
//! Each throughput variant is run 5 times (2,000,000 pairs each by default);
//! the median and the best run are printed, since a shared machine makes
//! single runs noisy.
//!
//! Optional arguments: the number of pairs per run (default 2,000,000), then
//! `pairs` or `memory` to run only one half.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use udlm::engine::{Engine, Event, Request};
use udlm::types::{LockId, Mode, Owner};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

const OWNER: Owner = Owner(1);

fn req<'a>(name: &'a [u8], mode: Mode) -> Request<'a> {
    Request {
        owner: OWNER,
        pid: 1,
        mode: mode as i32,
        flags: 0,
        name,
        lvb: None,
        has_bast: true,
    }
}

/// Writes "n<decimal>" into `buf`, returns the length.
fn fmt_name(buf: &mut [u8; 24], mut n: u64) -> usize {
    let mut tmp = [0u8; 20];
    let mut k = 0;
    loop {
        tmp[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[0] = b'n';
    for i in 0..k {
        buf[1 + i] = tmp[k - 1 - i];
    }
    1 + k
}

#[inline(always)]
fn pair(e: &mut Engine, out: &mut Vec<Event>, name: &[u8]) {
    let id = e.request(req(name, Mode::Ex)).expect("request");
    e.drain_events(out);
    debug_assert_eq!(out.len(), 1);
    out.clear();
    e.unlock(OWNER, id, 0, None).expect("unlock");
    e.drain_events(out);
    out.clear();
}

struct Rate {
    what: &'static str,
    pairs: u64,
    secs: f64,
}

fn run_rotating(n: u64, set: usize, anchored: bool) -> Rate {
    let names: Vec<Vec<u8>> = (0..set)
        .map(|i| format!("name-{i:04}").into_bytes())
        .collect();
    let mut e = Engine::default();
    let mut out = Vec::with_capacity(16);
    if anchored {
        for nm in &names {
            e.request(req(nm, Mode::Nl)).unwrap();
        }
        e.drain_events(&mut out);
        out.clear();
    }
    // warm-up
    for i in 0..(n / 20) as usize {
        pair(&mut e, &mut out, &names[i % set]);
    }
    let t = Instant::now();
    for i in 0..n as usize {
        pair(&mut e, &mut out, black_box(&names[i % set]));
    }
    let secs = t.elapsed().as_secs_f64();
    black_box(&e);
    let what = if anchored {
        "rotating set of 16 names, each kept alive by an NL lock"
    } else {
        "rotating set of 16 names"
    };
    Rate {
        what,
        pairs: n,
        secs,
    }
}

fn run_fresh(n: u64) -> Rate {
    let mut e = Engine::default();
    let mut out = Vec::with_capacity(16);
    let mut buf = [0u8; 24];
    for i in 0..n / 20 {
        let len = fmt_name(&mut buf, i);
        pair(&mut e, &mut out, &buf[..len]);
    }
    let t = Instant::now();
    for i in 0..n {
        let len = fmt_name(&mut buf, i + 1_000_000_000);
        pair(&mut e, &mut out, black_box(&buf[..len]));
    }
    let secs = t.elapsed().as_secs_f64();
    black_box(&e);
    Rate {
        what: "fresh name every pair",
        pairs: n,
        secs,
    }
}

struct Mem {
    locks: u64,
    names: u64,
    bytes: isize,
    secs: f64,
    allocs: usize,
}

/// Holds `locks` granted locks: EX on distinct names, NL when names are
/// shared (so that every lock is granted).
fn hold(locks: u64, names: u64) -> Mem {
    let mut out: Vec<Event> = Vec::with_capacity(16);
    let before = live();
    let allocs0 = ALLOCS.load(Relaxed);
    let mut e = Engine::default();
    let mut buf = [0u8; 24];
    let mode = if names == locks { Mode::Ex } else { Mode::Nl };
    let t = Instant::now();
    let mut ids: Vec<LockId> = Vec::new();
    for i in 0..locks {
        let len = fmt_name(&mut buf, i % names);
        let id = e.request(req(&buf[..len], mode)).unwrap();
        if i < 4 {
            ids.push(id);
        }
        e.drain_events(&mut out);
        out.clear();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(e.lock_count() as u64, locks);
    assert_eq!(e.resource_count() as u64, names);
    let bytes = live()
        - before
        - (out.capacity() * std::mem::size_of::<Event>()) as isize
        - (ids.capacity() * std::mem::size_of::<LockId>()) as isize;
    let allocs = ALLOCS.load(Relaxed) - allocs0;
    black_box(&e);
    drop(e);
    Mem {
        locks,
        names,
        bytes,
        secs,
        allocs,
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let only = std::env::args().nth(2).unwrap_or_default();
    println!("udlm engine benchmark (single thread, engine only)");
    println!();
    if only == "memory" {
        memory();
        return;
    }
    println!("uncontended lock+unlock pairs (request EX, drain, unlock, drain):");
    const REPS: usize = 5;
    let mut medians = Vec::new();
    for variant in 0..3 {
        let mut runs: Vec<Rate> = (0..REPS)
            .map(|_| match variant {
                0 => run_rotating(n, 16, false),
                1 => run_fresh(n),
                _ => run_rotating(n, 16, true),
            })
            .collect();
        runs.sort_by(|a, b| a.secs.partial_cmp(&b.secs).unwrap());
        let (best, med) = (&runs[0], &runs[REPS / 2]);
        println!(
            "  {:<56} median {:>5.2} M pairs/s {:>6.1} ns/pair   best {:>5.2} M pairs/s {:>6.1} ns/pair",
            med.what,
            med.pairs as f64 / med.secs / 1e6,
            med.secs * 1e9 / med.pairs as f64,
            best.pairs as f64 / best.secs / 1e6,
            best.secs * 1e9 / best.pairs as f64,
        );
        medians.push(med.pairs as f64 / med.secs);
    }
    println!("  ({REPS} runs of {n} pairs each per variant)");
    let best = medians[0];
    println!();
    println!(
        "target >= 5,000,000 pairs/s: {} ({:.2} M/s median on the rotating set)",
        if best >= 5e6 { "met" } else { "MISSED" },
        best / 1e6
    );
    if only == "pairs" {
        return;
    }
    println!();
    memory();
}

fn memory() {
    println!("memory with 1,000,000 granted locks (heap bytes counted by the global allocator):");
    let a = hold(1_000_000, 1_000_000);
    let b = hold(1_000_000, 1_000);
    for m in [&a, &b] {
        println!(
            "  {:>9} locks on {:>9} names: {:>11} bytes = {:>6.1} bytes/lock incl. its share of the resource ({} allocations; {:.0} k requests/s)",
            m.locks,
            m.names,
            m.bytes,
            m.bytes as f64 / m.locks as f64,
            m.allocs,
            m.locks as f64 / m.secs / 1e3
        );
    }
    // total = L*locks + R*names for both runs → solve for L and R
    let (l1, r1, t1) = (a.locks as f64, a.names as f64, a.bytes as f64);
    let (l2, r2, t2) = (b.locks as f64, b.names as f64, b.bytes as f64);
    let per_res = (t1 - t2 * l1 / l2) / (r1 - r2 * l1 / l2);
    let per_lock = (t2 - per_res * r2) / l2;
    println!("  => about {per_lock:.1} bytes per lock and {per_res:.1} bytes per resource");
    println!();
    println!(
        "target <= 256 bytes per lock incl. its share of the resource: {} ({:.1} with one resource per lock)",
        if (a.bytes as f64 / a.locks as f64) <= 256.0 { "met" } else { "MISSED" },
        a.bytes as f64 / a.locks as f64
    );
}
