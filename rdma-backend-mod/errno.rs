// SPDX-License-Identifier: GPL-2.0

//! Network errnos that the 6.12 `kernel::error::code` table lacks.

use kernel::bindings;
use kernel::prelude::*;

fn errno(n: u32) -> Error {
    Error::from_errno(-(n as i32))
}

pub(crate) fn timed_out() -> Error {
    errno(bindings::ETIMEDOUT)
}
pub(crate) fn protocol() -> Error {
    errno(bindings::EPROTO)
}
pub(crate) fn conn_refused() -> Error {
    errno(bindings::ECONNREFUSED)
}
pub(crate) fn host_unreachable() -> Error {
    errno(bindings::EHOSTUNREACH)
}
pub(crate) fn net_unreachable() -> Error {
    errno(bindings::ENETUNREACH)
}
pub(crate) fn not_connected() -> Error {
    errno(bindings::ENOTCONN)
}
