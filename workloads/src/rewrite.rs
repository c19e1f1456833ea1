//! Rewrite passes: before a page is rewritten with the next pass's data it is
//! read back and checked against the previous pass, and every page flips
//! between compressible and incompressible from pass to pass. Each swap slot
//! therefore moves between zswap (which takes the compressible pages) and the
//! backend behind it (which gets the rest), and a stale copy left in either
//! shows up as a page holding an older pass's data.

use crate::pattern;

pub const WORDS_PER_PAGE: usize = crate::region::PAGE / 8;

fn pass_seed(seed: u64, pass: u64) -> u64 {
    pattern::word(seed, pass.wrapping_add(0x0051_57A9))
}

/// Pass `pass`'s data for page `page`: pseudo-random words, and on
/// compressible turns the second half of the page one repeated non-zero
/// word, so it compresses to about half a page (big enough that a small
/// zswap pool fills and writes back to the swap device).
pub fn fill_page(words: &mut [u64], seed: u64, pass: u64, page: u64) {
    let s = pass_seed(seed, pass);
    for (i, w) in words.iter_mut().enumerate() {
        *w = pattern::word(s, page * WORDS_PER_PAGE as u64 + i as u64);
    }
    if (pass + page).is_multiple_of(2) {
        let half = WORDS_PER_PAGE / 2;
        let w = words[0] | 1;
        words[half..].fill(w);
    }
}

fn page_matches(words: &[u64], seed: u64, pass: u64, page: u64) -> bool {
    let mut want = [0u64; WORDS_PER_PAGE];
    fill_page(&mut want, seed, pass, page);
    words == want
}

/// What a wrong page holds instead of pass `pass`'s data.
#[derive(Debug, PartialEq, Eq)]
pub enum Wrong {
    /// The data of an earlier pass: a stale copy came back.
    Older(u64),
    /// Anything else.
    Garbage,
}

/// Checks one page against pass `pass`, and if it is wrong, says whether it
/// holds an earlier pass's data.
pub fn check_page(words: &[u64], seed: u64, pass: u64, page: u64) -> Option<Wrong> {
    if page_matches(words, seed, pass, page) {
        return None;
    }
    Some(
        (0..pass)
            .rev()
            .find(|&p| page_matches(words, seed, p, page))
            .map_or(Wrong::Garbage, Wrong::Older),
    )
}

/// Wrong pages found in one pass.
#[derive(Debug, Default)]
pub struct Tally {
    pub stale: usize,
    pub garbage: usize,
    pub first: Option<(u64, Wrong)>,
}

impl Tally {
    pub fn add(&mut self, page: u64, w: Wrong) {
        match w {
            Wrong::Older(_) => self.stale += 1,
            Wrong::Garbage => self.garbage += 1,
        }
        self.first.get_or_insert((page, w));
    }

    pub fn is_clean(&self) -> bool {
        self.stale == 0 && self.garbage == 0
    }
}

/// One pass over `words` (whole pages): check each page against `pass - 1`
/// (if any), then write pass `pass`'s data into it.
pub fn pass(words: &mut [u64], seed: u64, pass: u64) -> Tally {
    let mut t = Tally::default();
    for (page, chunk) in words.chunks_exact_mut(WORDS_PER_PAGE).enumerate() {
        let page = page as u64;
        if pass > 0 {
            if let Some(w) = check_page(chunk, seed, pass - 1, page) {
                t.add(page, w);
            }
        }
        fill_page(chunk, seed, pass, page);
    }
    t
}

/// Checks every page against `pass` without rewriting.
pub fn check_all(words: &[u64], seed: u64, pass: u64) -> Tally {
    let mut t = Tally::default();
    for (page, chunk) in words.chunks_exact(WORDS_PER_PAGE).enumerate() {
        if let Some(w) = check_page(chunk, seed, pass, page as u64) {
            t.add(page as u64, w);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_differ_and_alternate() {
        let mut a = [0u64; WORDS_PER_PAGE];
        let mut b = [0u64; WORDS_PER_PAGE];
        fill_page(&mut a, 1, 0, 4);
        fill_page(&mut b, 1, 1, 4);
        assert_ne!(a, b);
        // Pass 0 of an even page is the compressible one, pass 1 is not.
        let half = WORDS_PER_PAGE / 2;
        assert!(a[half..].iter().all(|&w| w == a[half] && w != 0));
        assert!(b[half..].windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn stale_page_is_named() {
        let mut v = vec![0u64; WORDS_PER_PAGE * 3];
        assert!(pass(&mut v, 9, 0).is_clean());
        assert!(pass(&mut v, 9, 1).is_clean());
        // Page 1 goes back to its pass-0 data, as a stale copy would.
        let (_, rest) = v.split_at_mut(WORDS_PER_PAGE);
        fill_page(&mut rest[..WORDS_PER_PAGE], 9, 0, 1);
        let t = pass(&mut v, 9, 2);
        assert_eq!(t.stale, 1);
        assert_eq!(t.first, Some((1, Wrong::Older(0))));
        // A flipped bit is garbage, not stale.
        v[2 * WORDS_PER_PAGE + 7] ^= 4;
        let t = check_all(&v, 9, 2);
        assert_eq!((t.stale, t.garbage), (0, 1));
    }
}
