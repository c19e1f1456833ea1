//! Copy-on-write over swapped pages: a parent fills a region, lets it be
//! swapped out, and forks. The child checks the parent's data, rewrites every
//! other page with its own and checks that; the parent, after the child
//! exits, must still read its own data everywhere.

use crate::pattern;
use crate::region::{Region, PAGE};
use std::io;

const WORDS_PER_PAGE: usize = PAGE / 8;

/// The child's data for the pages it rewrites (every even page).
fn child_fill(r: &mut Region, seed: u64) {
    for (page, chunk) in r.words_mut().chunks_exact_mut(WORDS_PER_PAGE).enumerate() {
        if page.is_multiple_of(2) {
            pattern::fill(chunk, seed ^ (page as u64) << 20);
        }
    }
}

fn child_check(r: &Region, parent_seed: u64, seed: u64) -> bool {
    let mut want = [0u64; WORDS_PER_PAGE];
    for (page, chunk) in r.words().chunks_exact(WORDS_PER_PAGE).enumerate() {
        if page.is_multiple_of(2) {
            pattern::fill(&mut want, seed ^ (page as u64) << 20);
        } else {
            // Odd pages still hold the parent's pattern at this position.
            for (i, w) in want.iter_mut().enumerate() {
                *w = pattern::word(parent_seed, (page * WORDS_PER_PAGE + i) as u64);
            }
        }
        if chunk != want {
            return false;
        }
    }
    true
}

/// Runs the child's half; returns its exit code (0: all checks passed).
fn child(r: &mut Region, seed: u64) -> i32 {
    if pattern::check(r.words(), seed).is_some() {
        return 2; // the parent's data did not survive into the child
    }
    child_fill(r, seed.wrapping_add(77));
    if !child_check(r, seed, seed.wrapping_add(77)) {
        return 3; // the child's own writes did not read back
    }
    0
}

/// Forks over the (swapped) region and checks both sides. Errors name the
/// side that saw wrong data.
pub fn run(r: &mut Region, seed: u64) -> Result<(), String> {
    // SAFETY: this process is single-threaded, so the child may run Rust
    // code; it leaves with _exit and never returns into the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = child(r, seed);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid status pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", io::Error::last_os_error()));
    }
    let child_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if let Some((first, words)) = pattern::check(r.words(), seed) {
        return Err(format!(
            "parent's data changed after the child wrote its copy: first at byte {}, {words} words differ",
            first * 8
        ));
    }
    if !child_ok {
        return Err(match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
            (true, 2) => "child read wrong data from the parent's swapped pages".into(),
            (true, 3) => "child's own writes did not read back".into(),
            _ => format!("child ended with status {status:#x}"),
        });
    }
    Ok(())
}
