// SPDX-License-Identifier: GPL-2.0

//! Wire format shared with farmem-server (farmem-server/src/protocol.rs is
//! the reference; the two must match): private data of the RDMA CM connect
//! request, accept and reject. Little-endian, fixed layout.

pub(crate) const MAGIC: u32 = 0x4657_5350;
/// Version 2 adds the session secret (in the accept) and reconnects (a
/// flag and the secret in the connect request). A version-1 server rejects
/// our requests as "unsupported protocol version": servers are upgraded
/// first (a version-2 server still serves version-1 clients).
pub(crate) const VERSION: u16 = 2;
pub(crate) const CONNECT_LEN: usize = 32;
pub(crate) const ACCEPT_LEN: usize = 40;
/// Connect request flag: re-attach to the session's region.
const FLAG_RECONNECT: u16 = 1;
/// Connect request flag: end the session (the server frees the region at
/// once and answers with a reject of status [`SESSION_CLOSED`]).
const FLAG_CLOSE: u16 = 2;
/// Reject status: a reconnect with the wrong secret (or from another
/// address than the session's).
pub(crate) const BAD_SECRET: u16 = 16;
/// Reject status: a reconnect to a session the server no longer holds
/// (its region freed).
pub(crate) const SESSION_GONE: u16 = 17;
/// The reject status acknowledging a close.
pub(crate) const SESSION_CLOSED: u16 = 18;
pub(crate) const REJECT_LEN: usize = 8;

/// A queue's connect request; `reconnect` carries the session secret
/// from the first accept when the queue re-attaches to its region.
pub(crate) fn connect_request(
    client_id: u64,
    queue: u16,
    queue_count: u16,
    reconnect: Option<u64>,
) -> [u8; CONNECT_LEN] {
    let mut b = [0u8; CONNECT_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&queue.to_le_bytes());
    b[8..10].copy_from_slice(&queue_count.to_le_bytes());
    if let Some(secret) = reconnect {
        b[10..12].copy_from_slice(&FLAG_RECONNECT.to_le_bytes());
        b[24..32].copy_from_slice(&secret.to_le_bytes());
    }
    b[16..24].copy_from_slice(&client_id.to_le_bytes());
    b
}

/// The request ending the session with `secret` (sent on unload).
pub(crate) fn close_request(
    client_id: u64,
    queue: u16,
    queue_count: u16,
    secret: u64,
) -> [u8; CONNECT_LEN] {
    let mut b = connect_request(client_id, queue, queue_count, Some(secret));
    b[10..12].copy_from_slice(&FLAG_CLOSE.to_le_bytes());
    b
}

/// The status in a reject from a farmem-server, if it is one.
pub(crate) fn reject_code(b: &[u8]) -> Option<u16> {
    if b.len() < REJECT_LEN || b[0..4] != MAGIC.to_le_bytes() {
        return None;
    }
    Some(le16(b, 6))
}

/// Where the server put this client's far memory.
#[derive(Clone, Copy, Default)]
pub(crate) struct Region {
    pub(crate) addr: u64,
    pub(crate) rkey: u32,
    pub(crate) size: u64,
    /// The session secret a reconnect presents.
    pub(crate) secret: u64,
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The largest region a client takes (its bitmap of held slots is 512 MiB
/// then); a larger one is refused, not truncated.
pub(crate) const MAX_REGION_BYTES: u64 = 1 << 44;

/// Queues the server accepts per client (farmem-server's `MAX_QUEUES`):
/// three per CPU, so at most this many CPUs are served.
pub(crate) const MAX_QUEUES: u32 = 3 * 256;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Parses the server's accept, checking everything before the region is
/// used: magic, version, status, reserved bytes, a region of at least one
/// page and at most [`MAX_REGION_BYTES`] whose end fits in 64 bits. The
/// error says what was wrong.
pub(crate) fn parse_accept(b: &[u8], page: u64) -> Result<Region, &'static str> {
    if b.len() < ACCEPT_LEN {
        return Err("too short");
    }
    if b[0..4] != MAGIC.to_le_bytes() {
        return Err("bad magic: not a farmem-server");
    }
    if le16(b, 4) != VERSION {
        return Err("unsupported protocol version");
    }
    if le16(b, 6) != 0 {
        return Err("status is not ok");
    }
    if b[12..16].iter().any(|&x| x != 0) {
        return Err("reserved bytes are not zero");
    }
    let r = Region {
        rkey: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        addr: le64(&b[16..24]),
        size: le64(&b[24..32]),
        secret: le64(&b[32..40]),
    };
    if r.secret == 0 {
        return Err("no session secret");
    }
    if r.size < page {
        return Err("the region is smaller than a page");
    }
    if r.size > MAX_REGION_BYTES {
        return Err("the region is larger than 16 TiB");
    }
    if r.addr.checked_add(r.size).is_none() {
        return Err("the region's end overflows the address space");
    }
    Ok(r)
}

/// The server's reason for rejecting us, if the reject is one of ours.
pub(crate) fn reject_reason(b: &[u8]) -> Option<&'static str> {
    if b.len() < REJECT_LEN || b[0..4] != MAGIC.to_le_bytes() {
        return None;
    }
    Some(match le16(b, 6) {
        1 => "not a fastswap client (bad magic)",
        2 => "unsupported protocol version",
        3 => "queue index or count out of range",
        4 => "queue count differs from the client's earlier queues",
        5 => "queue already connected",
        6 => "server cannot register a region for this client",
        7 => "private data too short",
        8 => "reserved bytes are not zero",
        9 => "server could not set up the queue pair",
        10 => "server has as many clients as it may serve",
        11 => "too many clients from this address",
        12 => "server's memory budget is used up",
        13 => "queue joins from another address than the client's first queue",
        14 => "client has had all its queues; it takes no new ones",
        15 => "no such client (its queue 0 must connect first)",
        16 => "reconnect refused: wrong session secret or another address",
        17 => "reconnect refused: the session is gone and its region freed",
        18 => "session closed: its region is freed",
        _ => "unknown reason",
    })
}
