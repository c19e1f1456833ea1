//! The connection protocol between fastswap_rdma.ko and farmem-server: the
//! private data carried in the RDMA CM connect request, accept and reject.
//! Little-endian, fixed layout; rdma-backend-mod/protocol.rs is the kernel's
//! copy and must match.
//!
//! Connect request (client to server, 32 bytes in version 2, 24 in 1):
//!
//! | bytes  | field                                          |
//! |--------|------------------------------------------------|
//! | 0..4   | magic                                          |
//! | 4..6   | version                                        |
//! | 6..8   | queue index                                    |
//! | 8..10  | queue count                                    |
//! | 10..12 | flags (v2; bit 0 reconnect, bit 1 close), 0 v1 |
//! | 12..16 | reserved, zero                                 |
//! | 16..24 | client id                                      |
//! | 24..32 | session secret (v2; reconnect, close; else 0)  |
//!
//! Accept (server to client, 40 bytes in version 2, 32 in 1):
//!
//! | bytes  | field                                  |
//! |--------|----------------------------------------|
//! | 0..4   | magic                                  |
//! | 4..6   | version                                |
//! | 6..8   | status, 0                              |
//! | 8..12  | rkey                                   |
//! | 12..16 | reserved, zero                         |
//! | 16..24 | remote address of the region's byte 0  |
//! | 24..32 | region size in bytes                   |
//! | 32..40 | session secret (v2)                    |
//!
//! Reject (server to client, 8 bytes): magic, version, status.
//!
//! Versions: the server answers a version-1 request with a version-1
//! accept (such a client cannot reconnect: its region is freed when its
//! last queue goes, as before); a version-2 client talking to a
//! version-1 server is rejected with "unsupported protocol version", so
//! servers are upgraded before clients. The session secret is drawn by
//! the server for each client and sent in every accept; a reconnect
//! (flag bit 0) must carry it, from the client's first address, to be
//! re-attached to the client's region. A close (flag bit 1, with the
//! secret, from the same address) ends the session: the server frees the
//! region at once instead of keeping it for a reconnect, and answers with
//! a reject of status 18 (session closed); the kernel client sends it when
//! it is unloaded.
//!
//! The CM pads private data with zeros to its transport's fixed size, so a
//! receiver sees more bytes than these; only the fields above are read, and
//! the reserved bytes inside them must be zero (they are how a later version
//! could add a field that an older peer must not silently ignore: such a
//! change bumps `VERSION`).

pub const MAGIC: u32 = 0x4657_5350; // "PSWF" little-endian: Fastswap
pub const VERSION: u16 = 2;
/// The oldest client version served.
pub const VERSION_1: u16 = 1;
/// Connect flag: re-attach to the region of an existing session.
pub const FLAG_RECONNECT: u16 = 1;
/// Connect flag: end the session and free its region (answered by a reject
/// with [`Status::SessionClosed`]).
pub const FLAG_CLOSE: u16 = 2;
/// Upper bound on queues per client (the kernel uses 3 per CPU).
pub const MAX_QUEUES: u16 = 3 * 256;

pub const CONNECT_LEN: usize = 32;
pub const CONNECT_LEN_V1: usize = 24;
pub const ACCEPT_LEN: usize = 40;
pub const ACCEPT_LEN_V1: usize = 32;
pub const REJECT_LEN: usize = 8;

/// Why a connection was refused; sent in the reject, logged by the client.
/// Codes are only ever added: a client that does not know a code still
/// sees that it was refused (the kernel prints "unknown reason").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    ReservedNotZero = 8,
    AcceptFailed = 9,
    TooManyClients = 10,
    TooManyFromPeer = 11,
    OverBudget = 12,
    PeerMismatch = 13,
    ClientClosed = 14,
    UnknownClient = 15,
    BadSecret = 16,
    SessionGone = 17,
    SessionClosed = 18,
}

const ALL: [Status; 19] = [
    Status::Ok,
    Status::BadMagic,
    Status::UnsupportedVersion,
    Status::BadQueue,
    Status::QueueCountMismatch,
    Status::DuplicateQueue,
    Status::NoMemory,
    Status::Malformed,
    Status::ReservedNotZero,
    Status::AcceptFailed,
    Status::TooManyClients,
    Status::TooManyFromPeer,
    Status::OverBudget,
    Status::PeerMismatch,
    Status::ClientClosed,
    Status::UnknownClient,
    Status::BadSecret,
    Status::SessionGone,
    Status::SessionClosed,
];

impl Status {
    pub fn from_u16(v: u16) -> Option<Self> {
        ALL.into_iter().find(|s| *s as u16 == v)
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
            Status::ReservedNotZero => "reserved bytes are not zero",
            Status::AcceptFailed => "server could not set up the queue pair",
            Status::TooManyClients => "server has as many clients as it may serve",
            Status::TooManyFromPeer => "too many clients from this address",
            Status::OverBudget => "server's memory budget is used up",
            Status::PeerMismatch => {
                "queue joins from another address than the client's first queue"
            }
            Status::ClientClosed => "client has had all its queues; it takes no new ones",
            Status::UnknownClient => "no such client (its queue 0 must connect first)",
            Status::BadSecret => "reconnect refused: wrong session secret or another address",
            Status::SessionGone => "reconnect refused: the session is gone and its region freed",
            Status::SessionClosed => "session closed: its region is freed",
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// Sent by the client with each queue's connect request. `Debug` shows
/// whether a secret is present, never the secret itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectRequest {
    pub version: u16,
    pub queue: u16,
    pub queue_count: u16,
    pub client_id: u64,
    /// Re-attach to an existing session (version 2).
    pub reconnect: bool,
    /// End the session (version 2).
    pub close: bool,
    /// The session's secret, for a reconnect; zero otherwise.
    pub secret: u64,
}

/// A session secret in `Debug` output: whether there is one, not its value.
struct Redacted(u64);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 == 0 { "none" } else { "<redacted>" })
    }
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("version", &self.version)
            .field("queue", &self.queue)
            .field("queue_count", &self.queue_count)
            .field("client_id", &self.client_id)
            .field("reconnect", &self.reconnect)
            .field("close", &self.close)
            .field("secret", &Redacted(self.secret))
            .finish()
    }
}

impl std::fmt::Debug for AcceptReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptReply")
            .field("addr", &self.addr)
            .field("rkey", &self.rkey)
            .field("size", &self.size)
            .field("secret", &Redacted(self.secret))
            .finish()
    }
}

impl ConnectRequest {
    /// Encodes as version 2 (a version-1 peer reads the first 24 bytes;
    /// the flags and secret are zero for a first connect).
    pub fn encode(&self) -> [u8; CONNECT_LEN] {
        let mut b = [0u8; CONNECT_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6..8].copy_from_slice(&self.queue.to_le_bytes());
        b[8..10].copy_from_slice(&self.queue_count.to_le_bytes());
        let flags = if self.reconnect { FLAG_RECONNECT } else { 0 }
            | if self.close { FLAG_CLOSE } else { 0 };
        b[10..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.client_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.secret.to_le_bytes());
        b
    }

    /// Parses and validates a request; the error is what to reject with.
    pub fn decode(b: &[u8]) -> Result<Self, Status> {
        if b.len() < CONNECT_LEN_V1 {
            return Err(Status::Malformed);
        }
        if u32_at(b, 0) != MAGIC {
            return Err(Status::BadMagic);
        }
        let mut req = ConnectRequest {
            version: u16_at(b, 4),
            queue: u16_at(b, 6),
            queue_count: u16_at(b, 8),
            client_id: u64_at(b, 16),
            reconnect: false,
            close: false,
            secret: 0,
        };
        match req.version {
            VERSION_1 => {
                if b[10..16].iter().any(|&x| x != 0) {
                    return Err(Status::ReservedNotZero);
                }
            }
            VERSION => {
                if b.len() < CONNECT_LEN {
                    return Err(Status::Malformed);
                }
                let flags = u16_at(b, 10);
                if flags & !(FLAG_RECONNECT | FLAG_CLOSE) != 0
                    || flags == FLAG_RECONNECT | FLAG_CLOSE
                    || b[12..16].iter().any(|&x| x != 0)
                {
                    return Err(Status::ReservedNotZero);
                }
                req.reconnect = flags & FLAG_RECONNECT != 0;
                req.close = flags & FLAG_CLOSE != 0;
                req.secret = u64_at(b, 24);
                match (req.reconnect || req.close, req.secret) {
                    (true, 0) => return Err(Status::BadSecret),
                    (false, s) if s != 0 => return Err(Status::ReservedNotZero),
                    _ => {}
                }
            }
            _ => return Err(Status::UnsupportedVersion),
        }
        if req.queue_count == 0 || req.queue_count > MAX_QUEUES || req.queue >= req.queue_count {
            return Err(Status::BadQueue);
        }
        Ok(req)
    }
}

/// Sent by the server in the accept: where the client's region is.
/// `Debug` shows whether a secret is present, never the secret itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptReply {
    /// The remote address of the region's first byte, as the client puts
    /// it in its RDMA work requests (an I/O virtual address, not a pointer
    /// in the server).
    pub addr: u64,
    pub rkey: u32,
    pub size: u64,
    /// The session's secret, for reconnecting (version 2).
    pub secret: u64,
}

/// Why an accept's private data is not a usable reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    #[error("accept too short ({0} bytes)")]
    Short(usize),
    #[error("accept is not from a farmem-server (bad magic)")]
    BadMagic,
    #[error("accept has protocol version {0}, expected {VERSION}")]
    Version(u16),
    #[error("accept carries status {0}, not ok")]
    Status(u16),
    #[error("accept has reserved bytes that are not zero")]
    Reserved,
    #[error("accept offers an empty region")]
    Empty,
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
        b[32..40].copy_from_slice(&self.secret.to_le_bytes());
        b
    }

    /// The accept for a client of `version`: a version-1 client gets the
    /// 32-byte accept of version 1, without the secret.
    pub fn encode_for(&self, version: u16) -> Vec<u8> {
        let mut b = self.encode().to_vec();
        if version == VERSION_1 {
            b.truncate(ACCEPT_LEN_V1);
            b[4..6].copy_from_slice(&VERSION_1.to_le_bytes());
        }
        b
    }

    /// Parses an accept, checking everything a client must check before it
    /// uses the region: magic, version, status, reserved bytes, a size.
    pub fn decode(b: &[u8]) -> Result<Self, AcceptError> {
        if b.len() < ACCEPT_LEN {
            return Err(AcceptError::Short(b.len()));
        }
        if u32_at(b, 0) != MAGIC {
            return Err(AcceptError::BadMagic);
        }
        match u16_at(b, 4) {
            VERSION => {}
            v => return Err(AcceptError::Version(v)),
        }
        match u16_at(b, 6) {
            0 => {}
            s => return Err(AcceptError::Status(s)),
        }
        if b[12..16].iter().any(|&x| x != 0) {
            return Err(AcceptError::Reserved);
        }
        let reply = AcceptReply {
            rkey: u32_at(b, 8),
            addr: u64_at(b, 16),
            size: u64_at(b, 24),
            secret: u64_at(b, 32),
        };
        if reply.size == 0 {
            return Err(AcceptError::Empty);
        }
        Ok(reply)
    }
}

pub fn encode_reject(status: Status) -> [u8; REJECT_LEN] {
    let mut b = [0u8; REJECT_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&(status as u16).to_le_bytes());
    b
}

/// The status code in a reject from a farmem-server (of any version), or
/// None when the reject carries no fastswap reason.
pub fn decode_reject(b: &[u8]) -> Option<u16> {
    if b.len() < REJECT_LEN || u32_at(b, 0) != MAGIC {
        return None;
    }
    Some(u16_at(b, 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ConnectRequest {
        ConnectRequest {
            version: VERSION_1,
            queue: 2,
            queue_count: 6,
            client_id: 0xdead_beef_1234,
            reconnect: false,
            close: false,
            secret: 0,
        }
    }

    #[test]
    fn connect_round_trip() {
        assert_eq!(ConnectRequest::decode(&req().encode()), Ok(req()));
    }

    #[test]
    fn connect_layout() {
        let b = req().encode();
        assert_eq!(&b[0..4], b"PSWF");
        assert_eq!(&b[4..6], &[1, 0]);
        assert_eq!(&b[6..8], &[2, 0]);
        assert_eq!(&b[8..10], &[6, 0]);
        assert_eq!(&b[10..16], &[0; 6]);
        assert_eq!(&b[16..24], &0xdead_beef_1234u64.to_le_bytes());
    }

    #[test]
    fn connect_padded_by_the_cm_still_decodes() {
        // The CM hands the server 56 bytes on RoCE: ours, then zeros.
        let mut b = [0u8; 56];
        b[..CONNECT_LEN].copy_from_slice(&req().encode());
        assert_eq!(ConnectRequest::decode(&b), Ok(req()));
    }

    #[test]
    fn connect_rejects_bad_input() {
        let good = req().encode();
        assert_eq!(ConnectRequest::decode(&good[..10]), Err(Status::Malformed));
        assert_eq!(ConnectRequest::decode(&[]), Err(Status::Malformed));
        let mut b = good;
        b[0] ^= 1;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::BadMagic));
        let mut b = good;
        b[4] = 9;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::UnsupportedVersion));
        for (q, n) in [(6, 6), (0, 0), (0, MAX_QUEUES + 1), (u16::MAX, u16::MAX)] {
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
        let r = ConnectRequest {
            queue: MAX_QUEUES - 1,
            queue_count: MAX_QUEUES,
            ..req()
        };
        assert_eq!(ConnectRequest::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn connect_reserved_bytes_must_be_zero() {
        for i in 10..16 {
            let mut b = req().encode();
            b[i] = 0x80;
            assert_eq!(
                ConnectRequest::decode(&b),
                Err(Status::ReservedNotZero),
                "byte {i}"
            );
        }
    }

    #[test]
    fn version_is_checked_before_the_rest() {
        // A request of another version may lay its bytes out differently:
        // it is refused as such, not as a malformed version-1 request.
        let mut b = req().encode();
        b[4] = 3;
        b[12] = 1;
        b[8] = 0;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::UnsupportedVersion));
    }

    fn reply() -> AcceptReply {
        AcceptReply {
            addr: 0,
            rkey: 0x1234,
            size: 1 << 30,
            secret: 0,
        }
    }

    #[test]
    fn accept_round_trip() {
        let a = reply();
        assert_eq!(AcceptReply::decode(&a.encode()), Ok(a));
        let mut padded = [0u8; 196];
        padded[..ACCEPT_LEN].copy_from_slice(&a.encode());
        assert_eq!(AcceptReply::decode(&padded), Ok(a));
    }

    #[test]
    fn accept_layout() {
        let b = reply().encode();
        assert_eq!(&b[0..4], b"PSWF");
        assert_eq!(&b[4..8], &[2, 0, 0, 0]);
        assert_eq!(&b[8..12], &0x1234u32.to_le_bytes());
        assert_eq!(&b[12..16], &[0; 4]);
        assert_eq!(&b[16..24], &[0; 8]);
        assert_eq!(&b[24..32], &(1u64 << 30).to_le_bytes());
    }

    #[test]
    fn accept_checks_every_field() {
        let good = reply().encode();
        assert_eq!(
            AcceptReply::decode(&good[..20]),
            Err(AcceptError::Short(20))
        );
        let mut b = good;
        b[3] = 0;
        assert_eq!(AcceptReply::decode(&b), Err(AcceptError::BadMagic));
        let mut b = good;
        b[4] = 1;
        assert_eq!(AcceptReply::decode(&b), Err(AcceptError::Version(1)));
        let mut b = good;
        b[6] = Status::NoMemory as u8;
        assert_eq!(AcceptReply::decode(&b), Err(AcceptError::Status(6)));
        for i in 12..16 {
            let mut b = good;
            b[i] = 1;
            assert_eq!(AcceptReply::decode(&b), Err(AcceptError::Reserved), "{i}");
        }
        let empty = AcceptReply { size: 0, ..reply() };
        assert_eq!(
            AcceptReply::decode(&empty.encode()),
            Err(AcceptError::Empty)
        );
    }

    fn v2_req() -> ConnectRequest {
        ConnectRequest {
            version: VERSION,
            queue: 2,
            queue_count: 6,
            client_id: 0xdead_beef_1234,
            reconnect: true,
            close: false,
            secret: 0x0123_4567_89ab_cdef,
        }
    }

    #[test]
    fn version_2_connect_carries_the_reconnect_flag_and_secret() {
        let b = v2_req().encode();
        assert_eq!(b.len(), 32);
        assert_eq!(&b[4..6], &[2, 0]);
        assert_eq!(&b[10..12], &[1, 0]);
        assert_eq!(&b[12..16], &[0; 4]);
        assert_eq!(&b[24..32], &0x0123_4567_89ab_cdefu64.to_le_bytes());
        assert_eq!(ConnectRequest::decode(&b), Ok(v2_req()));
        // Unknown flags are refused like reserved bytes.
        let mut b = v2_req().encode();
        b[10] |= 2;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::ReservedNotZero));
        // A first connect carries no secret.
        let mut first = v2_req();
        first.reconnect = false;
        first.secret = 0;
        assert_eq!(ConnectRequest::decode(&first.encode()), Ok(first));
        let mut b = first.encode();
        b[24] = 1;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::ReservedNotZero));
        // A reconnect without a secret is refused.
        let mut b = v2_req().encode();
        b[24..32].copy_from_slice(&[0; 8]);
        assert_eq!(ConnectRequest::decode(&b), Err(Status::BadSecret));
        // A close carries the secret; close and reconnect together are refused.
        let close = ConnectRequest {
            reconnect: false,
            close: true,
            ..v2_req()
        };
        let b = close.encode();
        assert_eq!(&b[10..12], &[2, 0]);
        assert_eq!(ConnectRequest::decode(&b), Ok(close));
        let mut b = close.encode();
        b[10] = 3;
        assert_eq!(ConnectRequest::decode(&b), Err(Status::ReservedNotZero));
        let mut b = close.encode();
        b[24..32].copy_from_slice(&[0; 8]);
        assert_eq!(ConnectRequest::decode(&b), Err(Status::BadSecret));
        // Version 2 needs 32 bytes.
        assert_eq!(
            ConnectRequest::decode(&v2_req().encode()[..24]),
            Err(Status::Malformed)
        );
    }

    #[test]
    fn version_1_clients_are_still_served() {
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&2u16.to_le_bytes());
        b[8..10].copy_from_slice(&6u16.to_le_bytes());
        b[16..24].copy_from_slice(&7u64.to_le_bytes());
        let r = ConnectRequest::decode(&b).unwrap();
        assert_eq!(
            (r.version, r.queue, r.queue_count, r.client_id),
            (1, 2, 6, 7)
        );
        assert!(!r.reconnect);
        assert_eq!(r.secret, 0);
        // The reply to it is a version-1 accept, without the secret.
        let a = reply().encode_for(1);
        assert_eq!(a.len(), ACCEPT_LEN_V1);
        assert_eq!(&a[4..6], &[1, 0]);
        assert_eq!(
            &a[..],
            &reply().encode()[..ACCEPT_LEN_V1]
                .iter()
                .enumerate()
                .map(|(i, &x)| if i == 4 { 1 } else { x })
                .collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn version_2_accept_carries_the_session_secret() {
        let a = AcceptReply {
            secret: 0x1122_3344_5566_7788,
            ..reply()
        };
        let b = a.encode();
        assert_eq!(b.len(), 40);
        assert_eq!(&b[4..6], &[2, 0]);
        assert_eq!(&b[32..40], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(AcceptReply::decode(&b), Ok(a));
    }

    #[test]
    fn reject_carries_status() {
        let b = encode_reject(Status::NoMemory);
        assert_eq!(&b[4..6], &VERSION.to_le_bytes());
        assert_eq!(decode_reject(&b), Some(Status::NoMemory as u16));
        assert_eq!(decode_reject(&b[..6]), None);
        assert_eq!(decode_reject(&[0u8; 8]), None);
    }

    #[test]
    fn status_codes_are_distinct_and_stable() {
        // The kernel's copy maps these numbers to text: never renumber.
        for (v, s) in ALL.iter().enumerate() {
            assert_eq!(*s as usize, v);
            assert_eq!(Status::from_u16(v as u16), Some(*s));
        }
        assert_eq!(Status::from_u16(ALL.len() as u16), None);
        assert_eq!(Status::BadMagic as u16, 1);
        assert_eq!(Status::Malformed as u16, 7);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = 0x0123_4567_89ab_cdef_u64;
        let req = ConnectRequest {
            version: VERSION,
            queue: 0,
            queue_count: 3,
            client_id: 7,
            reconnect: true,
            close: false,
            secret,
        };
        let reply = AcceptReply {
            addr: 1,
            rkey: 2,
            size: 4096,
            secret,
        };
        for text in [
            format!("{req:?}"),
            format!("{reply:?}"),
            format!("{req:#?}"),
        ] {
            assert!(!text.contains(&secret.to_string()), "{text}");
            assert!(!text.contains("123456789abcdef"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
    }
}
