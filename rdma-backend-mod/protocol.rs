// SPDX-License-Identifier: GPL-2.0

//! Wire format shared with farmem-server (farmem-server/src/protocol.rs is
//! the reference; the two must match): private data of the RDMA CM connect
//! request, accept and reject. Little-endian, fixed layout.

pub(crate) const MAGIC: u32 = 0x4657_5350;
pub(crate) const VERSION: u16 = 1;
pub(crate) const CONNECT_LEN: usize = 24;
pub(crate) const ACCEPT_LEN: usize = 32;
pub(crate) const REJECT_LEN: usize = 8;

pub(crate) fn connect_request(client_id: u64, queue: u16, queue_count: u16) -> [u8; CONNECT_LEN] {
    let mut b = [0u8; CONNECT_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&queue.to_le_bytes());
    b[8..10].copy_from_slice(&queue_count.to_le_bytes());
    b[16..24].copy_from_slice(&client_id.to_le_bytes());
    b
}

/// Where the server put this client's far memory.
#[derive(Clone, Copy, Default)]
pub(crate) struct Region {
    pub(crate) addr: u64,
    pub(crate) rkey: u32,
    pub(crate) size: u64,
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

pub(crate) fn parse_accept(b: &[u8]) -> Option<Region> {
    if b.len() < ACCEPT_LEN || b[0..4] != MAGIC.to_le_bytes() {
        return None;
    }
    Some(Region {
        rkey: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        addr: le64(&b[16..24]),
        size: le64(&b[24..32]),
    })
}

/// The server's reason for rejecting us, if the reject is one of ours.
pub(crate) fn reject_reason(b: &[u8]) -> Option<&'static str> {
    if b.len() < REJECT_LEN || b[0..4] != MAGIC.to_le_bytes() {
        return None;
    }
    Some(match u16::from_le_bytes([b[6], b[7]]) {
        1 => "not a fastswap client (bad magic)",
        2 => "unsupported protocol version",
        3 => "queue index or count out of range",
        4 => "queue count differs from the client's earlier queues",
        5 => "queue already connected",
        6 => "server cannot register a region for this client",
        7 => "private data too short",
        _ => "unknown reason",
    })
}
