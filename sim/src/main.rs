//! `cargo run --release -p sim -- --seed N | --seeds A..B | --soak SECONDS`
//! (see `sim::runner`).

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0x853c_49e6_748f_ea9b) };
}

/// Replaces the kernel's getrandom for this process: the standard
/// library's HashMap keys (which decide the nodes' iteration orders) and
/// the nodes' tokens become a fixed sequence per thread, so that a seed,
/// run in a fresh thread, replays exactly.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes, as for getrandom(2).
#[no_mangle]
pub unsafe extern "C" fn getrandom(
    buf: *mut libc::c_void,
    len: libc::size_t,
    _flags: libc::c_uint,
) -> libc::ssize_t {
    let p = buf as *mut u8;
    STATE.with(|s| {
        for i in 0..len {
            let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            // SAFETY: i < len, within the caller's buffer.
            unsafe { *p.add(i) = (z ^ (z >> 31)) as u8 };
        }
    });
    len as libc::ssize_t
}

fn main() {
    std::process::exit(sim::runner::main(std::env::args().skip(1).collect()));
}
