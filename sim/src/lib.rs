//! A deterministic simulator for udlm: the real `udlm::node::Node` of 3 to
//! 9 nodes in one process, over a simulated network (latency, connection
//! drops and reconnects, partitions, crashes and restarts, clean leaves,
//! clock drift), driven by programs that use every lock operation at random,
//! with invariants checked after every step. Everything comes from one seed;
//! a failing seed replays exactly (`cargo run --release -p sim -- --seed N`).
//!
//! `world` is the simulator, `runner` the command line, `capture` puts the
//! nodes' log lines into the trace.

pub mod capture;
pub mod fmt;
pub mod rng;
pub mod runner;
pub mod world;

pub use world::{Options, Outcome, Sim};

/// Runs one seed to its end. Replays exactly only inside the `sim`
/// binary, which fixes the standard library's hash keys (see `main.rs`)
/// and runs each seed in a fresh thread (`runner::run_isolated`).
pub fn run_seed(seed: u64, opts: Options) -> Outcome {
    Sim::new(seed, opts).run()
}
