// SPDX-License-Identifier: GPL-2.0

//! Parsing "32G"-style sizes from module parameters.

use kernel::prelude::*;

/// Parses bytes with an optional K, M, G or T suffix (powers of 1024).
///
/// Works on bytes, not `str` slices: slicing a `str` can panic on a char
/// boundary, and objtool in 6.12 does not know that panic function is
/// noreturn ("falls through to next function" in the caller).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().as_bytes();
    let (last, rest) = s.split_last()?;
    let (digits, shift) = match last {
        b'k' | b'K' => (rest, 10),
        b'm' | b'M' => (rest, 20),
        b'g' | b'G' => (rest, 30),
        b't' | b'T' => (rest, 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    n.checked_mul(1u64 << shift)
}

/// Reads a NUL-terminated C string parameter.
pub(crate) fn param_str(p: *const kernel::ffi::c_char) -> Option<&'static str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: module parameters of type charp point to NUL-terminated strings
    // that live as long as the module and are not changed after load (0444).
    let c = unsafe { CStr::from_char_ptr(p) };
    c.to_str().ok()
}
