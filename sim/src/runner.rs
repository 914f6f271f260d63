//! The command line.
//!
//! ```text
//! sim --seed N            run one seed with a trace; print it if it fails
//! sim --seeds A..B        run seeds A to B-1 (also A..=B), report failures
//! sim --soak SECONDS      run fresh random seeds for that long
//! options:
//!   --jobs J              parallel runs for --seeds/--soak (default: 2)
//!   --nodes N             force the cluster size (3..9)
//!   --steps N             bound on the random phase (default 900)
//!   --no-faults           no crashes, partitions, drops
//!   --force-release       dlm_release_lockspace with force=1 sometimes
//!   --no-long-link-cuts   single links never stay cut longer than the lease
//!   --no-master-check     do not check that one running node masters a resource
//!   --avoid-known-bugs    stay clear of the failure classes already reported
//!   --skew-div D          peers notice a lost session within lease/D (10)
//!   --verbose             print the trace of --seed even when it passes
//!   --tail K              print only the last K trace lines
//!   --hide-ticks          leave the nodes' ticks out of the printed trace
//! ```
//! Exit status 1 when a seed fails.

use crate::world::{panic_text, Options, Outcome, Sim};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Panics (in a node or in the simulator) are caught and reported with
/// where they happened.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = panic_text(info.payload());
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{loc}")));
    }));
}

/// The message and place of the last panic on this thread.
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// Runs one seed in a thread of its own: the standard library's hash keys
/// are per thread, so a fresh thread replays exactly.
pub fn run_isolated(seed: u64, opts: Options) -> Outcome {
    let o2 = opts.clone();
    let r = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .stack_size(64 << 20)
        .spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Sim::new(seed, o2).run()))
                .map_err(|e| last_panic().unwrap_or_else(|| panic_text(&*e)))
        })
        .expect("spawn")
        .join();
    let why = match r {
        Ok(Ok(o)) => return o,
        Ok(Err(m)) => m,
        Err(_) => "(thread lost)".into(),
    };
    Outcome {
        seed,
        steps: 0,
        sim_ms: 0,
        summary: String::new(),
        failure: Some(format!("the simulator itself panicked: {why}")),
        trace: Vec::new(),
    }
}

struct Args {
    seed: Option<u64>,
    seeds: Option<(u64, u64)>,
    soak: Option<u64>,
    jobs: usize,
    verbose: bool,
    tail: Option<usize>,
    hide_ticks: bool,
    opts: Options,
}

fn usage() -> String {
    "usage: sim (--seed N | --seeds A..B | --soak SECONDS) [--jobs J] [--nodes N] [--steps N] \
     [--no-faults] [--force-release] [--no-long-link-cuts] [--no-master-check] [--avoid-known-bugs] \
     [--skew-div D] [--verbose] [--tail K] [--hide-ticks]"
        .into()
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    if let Some((a, b)) = s.split_once("..=") {
        return Some((a.parse().ok()?, b.parse::<u64>().ok()? + 1));
    }
    let (a, b) = s.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        seed: None,
        seeds: None,
        soak: None,
        jobs: 2,
        verbose: false,
        tail: None,
        hide_ticks: false,
        opts: Options::default(),
    };
    let mut it = args.into_iter();
    while let Some(x) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match x.as_str() {
            "--seed" => a.seed = Some(val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--seeds" => a.seeds = Some(parse_range(&val("--seeds")?).ok_or("--seeds wants A..B")?),
            "--soak" => a.soak = Some(val("--soak")?.parse().map_err(|e| format!("--soak: {e}"))?),
            "--jobs" => a.jobs = val("--jobs")?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--nodes" => {
                a.opts.nodes = Some(
                    val("--nodes")?
                        .parse()
                        .map_err(|e| format!("--nodes: {e}"))?,
                )
            }
            "--steps" => {
                a.opts.max_steps = val("--steps")?
                    .parse()
                    .map_err(|e| format!("--steps: {e}"))?
            }
            "--skew-div" => {
                a.opts.detect_skew_div = val("--skew-div")?
                    .parse()
                    .map_err(|e| format!("--skew-div: {e}"))?
            }
            "--tail" => a.tail = Some(val("--tail")?.parse().map_err(|e| format!("--tail: {e}"))?),
            "--no-faults" => a.opts.faults = false,
            "--force-release" => a.opts.force_release = true,
            "--no-long-link-cuts" => a.opts.long_link_cuts = false,
            "--no-master-check" => a.opts.master_check = false,
            "--avoid-known-bugs" => a.opts.avoid_known_bugs = true,
            "--verbose" | "-v" => a.verbose = true,
            "--hide-ticks" => a.hide_ticks = true,
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if [a.seed.is_some(), a.seeds.is_some(), a.soak.is_some()]
        .iter()
        .filter(|&&b| b)
        .count()
        != 1
    {
        return Err(usage());
    }
    a.jobs = a.jobs.max(1);
    Ok(a)
}

pub fn main(args: Vec<String>) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    install_panic_hook();
    if let Some(seed) = a.seed {
        return one(seed, &a);
    }
    crate::capture::silence();
    if let Some((lo, hi)) = a.seeds {
        return many(lo..hi, None, &a);
    }
    let secs = a.soak.unwrap();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        >> 16;
    println!("soak: {secs} s of seeds from {base} on, {} jobs", a.jobs);
    many(base..u64::MAX, Some(Duration::from_secs(secs)), &a)
}

fn replay_cmd(seed: u64, a: &Args) -> String {
    let mut extra = String::new();
    let o = &a.opts;
    let d = Options::default();
    if let Some(n) = o.nodes {
        extra += &format!(" --nodes {n}");
    }
    if o.max_steps != d.max_steps {
        extra += &format!(" --steps {}", o.max_steps);
    }
    if !o.faults {
        extra += " --no-faults";
    }
    if o.force_release {
        extra += " --force-release";
    }
    if !o.long_link_cuts {
        extra += " --no-long-link-cuts";
    }
    if !o.master_check {
        extra += " --no-master-check";
    }
    if o.avoid_known_bugs {
        extra += " --avoid-known-bugs";
    }
    if o.detect_skew_div != d.detect_skew_div {
        extra += &format!(" --skew-div {}", o.detect_skew_div);
    }
    format!("cargo run --release -p sim -- --seed {seed}{extra}")
}

fn one(seed: u64, a: &Args) -> i32 {
    let mut opts = a.opts.clone();
    opts.trace = true;
    let captured = crate::capture::start();
    let o = run_isolated(seed, opts);
    if captured {
        crate::capture::stop();
    }
    let show = o.failure.is_some() || a.verbose;
    if show {
        let lines: Vec<&String> = o
            .trace
            .iter()
            .filter(|l| !(a.hide_ticks && l.contains("] tick n")))
            .collect();
        let skip = a.tail.map_or(0, |k| lines.len().saturating_sub(k));
        if skip > 0 {
            println!("... ({skip} earlier lines)");
        }
        for l in &lines[skip..] {
            println!("{l}");
        }
    }
    match &o.failure {
        Some(f) => {
            println!("FAIL seed {seed}: {f}");
            println!("replay: {}", replay_cmd(seed, a));
            1
        }
        None => {
            println!("ok seed {seed}: {}", o.summary);
            0
        }
    }
}

fn many(range: std::ops::Range<u64>, time: Option<Duration>, a: &Args) -> i32 {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(range.start));
    let done = Arc::new(AtomicU64::new(0));
    let steps = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..a.jobs {
        let (next, done, steps, stop, failures) = (
            Arc::clone(&next),
            Arc::clone(&done),
            Arc::clone(&steps),
            Arc::clone(&stop),
            Arc::clone(&failures),
        );
        let opts = a.opts.clone();
        let end = range.end;
        workers.push(std::thread::spawn(move || loop {
            if stop.load(Ordering::Relaxed) || time.is_some_and(|t| start.elapsed() >= t) {
                return;
            }
            let seed = next.fetch_add(1, Ordering::Relaxed);
            if seed >= end {
                return;
            }
            let o = run_isolated(seed, opts.clone());
            steps.fetch_add(o.steps, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
            if let Some(f) = o.failure {
                // A failure must replay exactly.
                let again = run_isolated(seed, opts.clone());
                let note = if again.failure.as_deref() == Some(f.as_str()) {
                    "replays identically".to_string()
                } else {
                    format!("WARNING: the replay differs: {:?}", again.failure)
                };
                println!("FAIL seed {seed}: {f}  [{note}]");
                failures.lock().unwrap().push((seed, f));
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let el = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let mut f = failures.lock().unwrap().clone();
    f.sort();
    println!(
        "{n} seeds, {} failed, {:.1} s, {:.1} seeds/s, {:.0} steps/s",
        f.len(),
        el,
        n as f64 / el.max(1e-9),
        steps.load(Ordering::Relaxed) as f64 / el.max(1e-9)
    );
    for (seed, msg) in &f {
        println!("  seed {seed}: {msg}");
        println!("    replay: {}", replay_cmd(*seed, a));
    }
    i32::from(!f.is_empty())
}
