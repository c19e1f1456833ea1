//! The connection protocol between fastswap_rdma.ko and farmem-server: the
//! private data carried in the RDMA CM connect request, accept and reject.
//! Little-endian, fixed layout; rdma-backend-mod/protocol.rs is the kernel's
//! copy and must match.

pub const MAGIC: u32 = 0x4657_5350; // "PSWF" little-endian: Fastswap
pub const VERSION: u16 = 1;
/// Upper bound on queues per client (the kernel uses 3 per CPU).
pub const MAX_QUEUES: u16 = 3 * 256;

pub const CONNECT_LEN: usize = 24;
pub const ACCEPT_LEN: usize = 32;
pub const REJECT_LEN: usize = 8;

/// Why a connection was refused; sent in the reject, logged by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Ok = 0,
    BadMagic = 1,
    UnsupportedVersion = 2,
    BadQueue = 3,
    QueueCountMismatch = 4,
    DuplicateQueue = 5,
    NoMemory = 6,
    Malformed = 7,
}

impl Status {
    pub fn from_u16(v: u16) -> Option<Self> {
        use Status::*;
        [
            Ok,
            BadMagic,
            UnsupportedVersion,
            BadQueue,
            QueueCountMismatch,
            DuplicateQueue,
            NoMemory,
            Malformed,
        ]
        .into_iter()
        .find(|s| *s as u16 == v)
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BadMagic => "not a fastswap client (bad magic)",
            Status::UnsupportedVersion => "unsupported protocol version",
            Status::BadQueue => "queue index or count out of range",
            Status::QueueCountMismatch => "queue count differs from the client's earlier queues",
            Status::DuplicateQueue => "queue already connected",
            Status::NoMemory => "server cannot register a region for this client",
            Status::Malformed => "private data too short",
        }
    }
}

/// Sent by the client with each queue's connect request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub version: u16,
    pub queue: u16,
    pub queue_count: u16,
    pub client_id: u64,
}

impl ConnectRequest {
    pub fn encode(&self) -> [u8; CONNECT_LEN] {
        let mut b = [0u8; CONNECT_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6..8].copy_from_slice(&self.queue.to_le_bytes());
        b[8..10].copy_from_slice(&self.queue_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.client_id.to_le_bytes());
        b
    }

    /// Parses and validates a request; the error is what to reject with.
    pub fn decode(b: &[u8]) -> Result<Self, Status> {
        if b.len() < CONNECT_LEN {
            return Err(Status::Malformed);
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != MAGIC {
            return Err(Status::BadMagic);
        }
        let req = ConnectRequest {
            version: u16_at(4),
            queue: u16_at(6),
            queue_count: u16_at(8),
            client_id: u64::from_le_bytes(b[16..24].try_into().map_err(|_| Status::Malformed)?),
        };
        if req.version != VERSION {
            return Err(Status::UnsupportedVersion);
        }
        if req.queue_count == 0 || req.queue_count > MAX_QUEUES || req.queue >= req.queue_count {
            return Err(Status::BadQueue);
        }
        Ok(req)
    }
}

/// Sent by the server in the accept: where the client's region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptReply {
    pub addr: u64,
    pub rkey: u32,
    pub size: u64,
}

impl AcceptReply {
    pub fn encode(&self) -> [u8; ACCEPT_LEN] {
        let mut b = [0u8; ACCEPT_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(Status::Ok as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.rkey.to_le_bytes());
        b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        b[24..32].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < ACCEPT_LEN || b[0..4] != MAGIC.to_le_bytes() {
            return None;
        }
        Some(AcceptReply {
            rkey: u32::from_le_bytes(b[8..12].try_into().ok()?),
            addr: u64::from_le_bytes(b[16..24].try_into().ok()?),
            size: u64::from_le_bytes(b[24..32].try_into().ok()?),
        })
    }
}

pub fn encode_reject(status: Status) -> [u8; REJECT_LEN] {
    let mut b = [0u8; REJECT_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&(status as u16).to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ConnectRequest {
        ConnectRequest {
            version: VERSION,
            queue: 2,
            queue_count: 6,
            client_id: 0xdead_beef_1234,
        }
    }

    #[test]
    fn connect_round_trip() {
        assert_eq!(ConnectRequest::decode(&req().encode()), Ok(req()));
    }

    #[test]
    fn connect_rejects_bad_input() {
        let good = req().encode();
        assert_eq!(ConnectRequest::decode(&good[..10]), Err(Status::Malformed));
        let mut b = good;
        b[0] ^= 1;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::BadMagic));
        let mut b = good;
        b[4] = 9;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::UnsupportedVersion));
        for (q, n) in [(6, 6), (0, 0), (0, MAX_QUEUES + 1)] {
            let r = ConnectRequest {
                queue: q,
                queue_count: n,
                ..req()
            };
            assert_eq!(
                ConnectRequest::decode(&r.encode()),
                Err(Status::BadQueue),
                "{q}/{n}"
            );
        }
    }

    #[test]
    fn accept_round_trip() {
        let a = AcceptReply {
            addr: 0x7f00_0000_1000,
            rkey: 0x1234,
            size: 1 << 30,
        };
        assert_eq!(AcceptReply::decode(&a.encode()), Some(a));
        assert_eq!(AcceptReply::decode(&a.encode()[..20]), None);
    }

    #[test]
    fn reject_carries_status() {
        let b = encode_reject(Status::NoMemory);
        assert_eq!(
            Status::from_u16(u16::from_le_bytes([b[6], b[7]])),
            Some(Status::NoMemory)
        );
    }

    #[test]
    fn status_codes_are_distinct() {
        for v in 0..8u16 {
            assert_eq!(Status::from_u16(v).map(|s| s as u16), Some(v));
        }
        assert_eq!(Status::from_u16(8), None);
    }
}
