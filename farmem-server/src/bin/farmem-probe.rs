//! farmem-probe: a userspace client of farmem-server for the tests, honest
//! and hostile. Each mode prints what happened and exits 0 when the server
//! behaved as the mode expects. Every mode is bounded in count and time.
//!
//!   reject SERVER PORT KIND       a malformed connect request (bad-magic,
//!                                 bad-version, short, bad-queue, reserved)
//!                                 must be refused with a reason
//!   isolation SERVER PORT         two clients each write and read back their
//!                                 own region; the second must fail to read
//!                                 the first's with the first's rkey
//!   flood SERVER PORT             many fake client ids, each joining only
//!                                 queue 0 of several (half-open): counts
//!                                 what the server accepts and why it refuses
//!                                 the rest, and can wait for the server to
//!                                 release the half-open ones
//!   join SERVER PORT              one join with a chosen client id, queue
//!                                 and source address (an impostor)
//!   impostor SERVER PORT          a client on this address, and a join of
//!                                 its id from another address, which must be
//!                                 refused; then the client completes and takes
//!                                 no more joins
//!   churn SERVER PORT             clients connecting, using a page and
//!                                 leaving, one after another, for a while
//!   sniff-id IFACE SECS           watch IFACE for a fastswap connect request
//!                                 (as anyone on the network could) and print
//!                                 its client id
//!   id-hash ID                    the short hash the server logs for ID
//!   bad-server PORT KIND          a server that accepts every connection
//!                                 with a flawed accept (bad-version, status,
//!                                 reserved, tiny, overflow), which a client
//!                                 must refuse

use clap::{Parser, Subcommand};
use farmem_server::logging::ShortId;
use farmem_server::probe_connection::{Connection, ProbeError};
use farmem_server::protocol::{
    AcceptReply, ConnectRequest, Status, ACCEPT_LEN, CONNECT_LEN, MAGIC, VERSION,
};
use farmem_server::size::Size;
use farmem_server::verbs::{EventChannel, EventKind, Region};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WC_SUCCESS: u32 = 0;
/// Bounds on the hostile modes.
const MAX_FLOOD: u32 = 512;
const MAX_SECS: u64 = 600;

/// Prints a line; a closed stdout loses it rather than panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(about = "Test client of farmem-server")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Send a malformed connect request; succeeds if it is refused
    Reject {
        server: Ipv4Addr,
        port: u16,
        /// bad-magic, bad-version, short, bad-queue or reserved
        kind: String,
    },
    /// Two clients use their own regions and cannot use each other's
    Isolation { server: Ipv4Addr, port: u16 },
    /// Many fake clients joining queue 0 of several, from one address
    Flood {
        server: Ipv4Addr,
        port: u16,
        /// Local address to connect from
        #[arg(long)]
        from: Option<Ipv4Addr>,
        /// Fake client ids to present (at most 512)
        #[arg(long, default_value_t = 16)]
        clients: u32,
        /// Queues each fake client claims to have (it joins only queue 0)
        #[arg(long, default_value_t = 6)]
        queues: u16,
        /// Fail unless exactly this many are accepted
        #[arg(long)]
        expect_accepted: Option<u32>,
        /// Fail unless some refusal's reason contains this text
        #[arg(long)]
        expect_reason: Vec<String>,
        /// Fail if the regions accepted add up to more than this
        #[arg(long)]
        max_bytes: Option<Size>,
        /// Then wait up to SECS for the server to disconnect every accepted
        /// one (its join deadline); fail if it does not
        #[arg(long)]
        expect_release: Option<u64>,
        /// Else keep the accepted ones this long, then leave
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
    /// One join with a chosen client id
    Join {
        server: Ipv4Addr,
        port: u16,
        /// Client id, in hex
        #[arg(long, value_parser = parse_hex)]
        id: u64,
        #[arg(long, default_value_t = 0)]
        queue: u16,
        #[arg(long, default_value_t = 1)]
        queues: u16,
        #[arg(long)]
        from: Option<Ipv4Addr>,
        /// Succeed only if refused with a reason containing this text
        #[arg(long)]
        expect_reject: Option<String>,
    },
    /// A join of a live client's id from another address must be refused
    Impostor {
        server: Ipv4Addr,
        port: u16,
        /// The other local address the impostor connects from
        #[arg(long)]
        from: Ipv4Addr,
    },
    /// Clients connecting, using a page and leaving, one after another
    /// (a second apart)
    Churn {
        server: Ipv4Addr,
        port: u16,
        /// At most this many clients
        #[arg(long, default_value_t = 4)]
        clients: u32,
        /// For at most this long
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Keep each client this long (seconds)
        #[arg(long, default_value_t = 2)]
        hold: u64,
    },
    /// Print the client id of the first fastswap connect request seen
    SniffId { iface: String, secs: u64 },
    /// Serve with a flawed accept, for a client's checks of it
    BadServer {
        port: u16,
        /// bad-version, status, reserved, tiny (less than a page) or
        /// overflow (a region whose end passes 2^64)
        kind: String,
        /// Serve this long, then exit
        #[arg(long, default_value_t = 60)]
        secs: u64,
    },
    /// Print the short hash farmem-server logs for a client id
    IdHash {
        #[arg(value_parser = parse_hex)]
        id: u64,
    },
}

fn parse_hex(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s:?}: {e}"))
}

fn request(client_id: u64, queue: u16, queue_count: u16) -> [u8; CONNECT_LEN] {
    ConnectRequest {
        version: VERSION,
        queue,
        queue_count,
        client_id,
        reconnect: false,
        close: false,
        secret: 0,
    }
    .encode()
}

fn reject(server: SocketAddrV4, kind: &str) -> Result<(), String> {
    let good = request(0x5eed, 0, 1);
    let data: Vec<u8> = match kind {
        "bad-magic" => {
            let mut b = good.to_vec();
            b[0] ^= 0xff;
            b
        }
        "bad-version" => {
            let mut b = good.to_vec();
            b[4] = 99;
            b
        }
        "short" => good[..6].to_vec(),
        "bad-queue" => request(1, 5, 2).to_vec(),
        "reserved" => {
            let mut b = good.to_vec();
            b[12] = 1;
            b
        }
        other => return Err(format!("unknown kind {other}")),
    };
    match Connection::connect(server, &data) {
        Ok(_) => Err(format!("{kind}: the server accepted a malformed request")),
        Err(ProbeError::Rejected(why)) => {
            say!("{kind}: rejected: {why}");
            Ok(())
        }
        Err(e) => Err(format!("{kind}: expected a reject, got: {e}")),
    }
}

/// A flawed accept of `kind` for `region`.
fn bad_accept(kind: &str, region: &Region) -> Result<[u8; ACCEPT_LEN], String> {
    let mut reply = AcceptReply {
        addr: region.iova(),
        rkey: region.rkey(),
        size: region.size(),
        secret: 1,
    };
    match kind {
        "tiny" => reply.size = 100,
        "overflow" => reply.addr = u64::MAX - 4095,
        _ => {}
    }
    let mut b = reply.encode();
    match kind {
        "bad-version" => b[4] = 99,
        "status" => b[6] = Status::OverBudget as u8,
        "reserved" => b[13] = 1,
        "tiny" | "overflow" => {}
        other => return Err(format!("unknown kind {other}")),
    }
    Ok(b)
}

fn bad_server(port: u16, kind: &str, secs: u64) -> Result<(), String> {
    let ch = EventChannel::new().map_err(|e| e.to_string())?;
    let _listener = ch
        .listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), 16)
        .map_err(|e| format!("listen on port {port}: {e}"))?;
    say!("bad-server: listening on port {port}, accepting with {kind}");
    let end = Instant::now() + Duration::from_secs(secs.min(MAX_SECS));
    // Field order is drop order: the ids (QPs) before the regions (PDs).
    let mut held = Vec::new();
    let mut served = 0u32;
    while Instant::now() < end && served < MAX_FLOOD {
        let ev = match ch.next_event().map_err(|e| e.to_string())? {
            Some(ev) => ev,
            None => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if ev.kind() != EventKind::ConnectRequest {
            continue;
        }
        let Some(id) = ev.take_conn_id() else {
            continue;
        };
        drop(ev);
        let device = id.device().ok_or("connection without a device")?;
        let region = Region::new(&device, 1 << 20, 4).map_err(|e| e.to_string())?;
        let data = bad_accept(kind, &region)?;
        match id.accept(&region, &data) {
            Ok(()) => say!("bad-server: accepted a connection with {kind}"),
            Err(e) => say!("bad-server: accept failed: {e}"),
        }
        served += 1;
        held.push((id, region));
    }
    Ok(())
}

fn fill(c: &mut Connection, seed: u8) {
    for (i, b) in c.buffer().iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
}

fn own_region_round_trip(c: &mut Connection, name: &str, seed: u8) -> Result<(), String> {
    let (addr, rkey) = (c.region.addr, c.region.rkey);
    fill(c, seed);
    let st = c
        .transfer(true, addr + 4096, rkey)
        .map_err(|e| e.to_string())?;
    if st != WC_SUCCESS {
        return Err(format!(
            "{name}: write to its own region failed (status {st})"
        ));
    }
    c.buffer().fill(0);
    let st = c
        .transfer(false, addr + 4096, rkey)
        .map_err(|e| e.to_string())?;
    if st != WC_SUCCESS {
        return Err(format!(
            "{name}: read of its own region failed (status {st})"
        ));
    }
    let ok = c
        .buffer()
        .iter()
        .enumerate()
        .all(|(i, b)| *b == seed.wrapping_add(i as u8));
    if !ok {
        return Err(format!("{name}: page read back differs"));
    }
    say!("{name}: wrote and read back a page of its own region");
    Ok(())
}

/// Ends a finished client's session, as the kernel client does on unload,
/// so the server frees its region now rather than keep it for a reconnect
/// (`--reconnect-linger`).
fn close(
    c: Connection,
    from: Option<Ipv4Addr>,
    server: SocketAddrV4,
    id: u64,
    queues: u16,
) -> Result<(), String> {
    let r = c.close_session(from, server, id, queues);
    drop(c);
    r.map_err(|e| format!("closing the session of client {}: {e}", ShortId::of(id)))
}

fn isolation(server: SocketAddrV4) -> Result<(), String> {
    let a = Connection::connect(server, &request(0xa11ce, 0, 1))
        .map_err(|e| format!("client A: {e}"))?;
    let b = Connection::connect(server, &request(0xb0b, 0, 1));
    let b = match b {
        Ok(b) => b,
        Err(e) => {
            let why = format!("client B: {e}");
            return Err(match close(a, None, server, 0xa11ce, 1) {
                Ok(()) => why,
                Err(c) => format!("{why}; {c}"),
            });
        }
    };
    let (mut a, mut b) = (a, b);
    let r = isolation_check(&mut a, &mut b);
    let closed = close(a, None, server, 0xa11ce, 1).and(close(b, None, server, 0xb0b, 1));
    r.and(closed)
}

/// Each client reaches its own region, and not the other's.
fn isolation_check(a: &mut Connection, b: &mut Connection) -> Result<(), String> {
    say!(
        "client A region {:#x} rkey {:#x}; client B region {:#x} rkey {:#x}",
        a.region.addr,
        a.region.rkey,
        b.region.addr,
        b.region.rkey
    );
    own_region_round_trip(a, "client A", 7)?;
    own_region_round_trip(b, "client B", 99)?;
    let (addr, rkey) = (a.region.addr, a.region.rkey);
    let st = b
        .transfer(false, addr + 4096, rkey)
        .map_err(|e| e.to_string())?;
    if st == WC_SUCCESS {
        return Err("client B read client A's page with A's address and key".into());
    }
    say!("client B using client A's address and key: refused (completion status {st}, remote access error)");
    Ok(())
}

/// A client id no other probe run is likely to use.
fn fresh_id(salt: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z =
        t ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct FloodArgs {
    from: Option<Ipv4Addr>,
    clients: u32,
    queues: u16,
    expect_accepted: Option<u32>,
    expect_reason: Vec<String>,
    max_bytes: Option<u64>,
    expect_release: Option<u64>,
    hold: u64,
}

fn flood(server: SocketAddrV4, a: FloodArgs) -> Result<(), String> {
    if a.clients == 0 || a.clients > MAX_FLOOD {
        return Err(format!("--clients must be 1 to {MAX_FLOOD}"));
    }
    if a.queues < 2 {
        return Err("--queues must be at least 2 (the clients are half-open)".into());
    }
    let (hold, release) = (
        a.hold.min(MAX_SECS),
        a.expect_release.map(|s| s.min(MAX_SECS)),
    );
    let started = Instant::now();
    let base = fresh_id(0);
    let mut accepted = Vec::new();
    let mut bytes = 0u64;
    let mut reasons: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..u64::from(a.clients) {
        let id = base.wrapping_add(i);
        match Connection::connect_from(a.from, server, &request(id, 0, a.queues)) {
            Ok(c) => {
                bytes += c.region.size;
                accepted.push(c);
            }
            Err(ProbeError::Rejected(why)) => *reasons.entry(why).or_default() += 1,
            Err(e) => *reasons.entry(format!("failed: {e}")).or_default() += 1,
        }
    }
    let refused: u32 = reasons.values().sum();
    say!(
        "flood: {} fake clients (queue 0 of {} each) in {:.1} s: {} accepted ({} MiB), {} refused",
        a.clients,
        a.queues,
        started.elapsed().as_secs_f64(),
        accepted.len(),
        bytes >> 20,
        refused
    );
    for (why, n) in &reasons {
        say!("flood:   {n} x {why}");
    }
    let mut errors = Vec::new();
    if let Some(n) = a.expect_accepted {
        if accepted.len() != n as usize {
            errors.push(format!("expected {n} accepted, got {}", accepted.len()));
        }
    }
    for want in &a.expect_reason {
        if !reasons.keys().any(|r| r.contains(want.as_str())) {
            errors.push(format!("no refusal said {want:?}"));
        }
    }
    if let Some(max) = a.max_bytes {
        if bytes > max {
            errors.push(format!(
                "the server gave {} MiB, more than {} MiB",
                bytes >> 20,
                max >> 20
            ));
        }
    }
    if reasons.keys().any(|r| r.starts_with("failed")) {
        errors.push("some connections neither connected nor got a reason".into());
    }
    if let Some(secs) = release {
        let deadline = started + Duration::from_secs(secs);
        let mut left: Vec<Connection> = accepted;
        let total = left.len();
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|c| !c.disconnected_within(Duration::from_millis(20)));
        }
        if left.is_empty() {
            say!(
                "flood: the server disconnected all {total} half-open clients {:.1} s after the flood began",
                started.elapsed().as_secs_f64()
            );
        } else {
            errors.push(format!(
                "{} of {total} half-open clients still connected after {secs} s",
                left.len()
            ));
        }
    } else if hold > 0 {
        std::thread::sleep(Duration::from_secs(hold));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("flood: {}", errors.join("; ")))
    }
}

fn join(
    server: SocketAddrV4,
    from: Option<Ipv4Addr>,
    id: u64,
    queue: u16,
    queues: u16,
    expect_reject: Option<String>,
) -> Result<(), String> {
    let what = format!(
        "join of queue {}/{queues} of client {} from {}",
        queue + 1,
        ShortId::of(id),
        from.map_or("any address".to_string(), |a| a.to_string())
    );
    match (
        Connection::connect_from(from, server, &request(id, queue, queues)),
        expect_reject,
    ) {
        (Ok(c), None) => {
            say!(
                "{what}: accepted ({} MiB region, rkey {:#x})",
                c.region.size >> 20,
                c.region.rkey
            );
            Ok(())
        }
        (Ok(_), Some(_)) => Err(format!("{what}: accepted, expected a refusal")),
        (Err(ProbeError::Rejected(why)), Some(want)) if why.contains(&want) => {
            say!("{what}: rejected: {why}");
            Ok(())
        }
        (Err(e), _) => Err(format!("{what}: {e}")),
    }
}

fn impostor(server: SocketAddrV4, from: Ipv4Addr) -> Result<(), String> {
    let id = fresh_id(1);
    let s = ShortId::of(id);
    let mut q0 = Connection::connect(server, &request(id, 0, 2))
        .map_err(|e| format!("client {s} queue 1/2: {e}"))?;
    say!("client {s}: queue 1/2 connected");
    let stolen = Status::PeerMismatch.reason();
    match Connection::connect_from(Some(from), server, &request(id, 1, 2)) {
        Ok(_) => return Err(format!("impostor from {from}: got queue 2/2 of client {s}")),
        Err(ProbeError::Rejected(why)) if why == stolen => {
            say!("impostor from {from} presenting client {s}'s id: rejected: {why}")
        }
        Err(e) => {
            return Err(format!(
                "impostor from {from}: expected {stolen:?}, got: {e}"
            ))
        }
    }
    let q1 = Connection::connect(server, &request(id, 1, 2))
        .map_err(|e| format!("client {s} queue 2/2: {e}"))?;
    say!("client {s}: queue 2/2 connected from its own address");
    // Complete now: its session is closed whatever happens next.
    let r = complete_client_is_closed(server, &mut q0, id);
    drop(q1);
    r.and(close(q0, None, server, id, 2))
}

/// A complete client's region works, and it takes no third join.
fn complete_client_is_closed(
    server: SocketAddrV4,
    q0: &mut Connection,
    id: u64,
) -> Result<(), String> {
    let s = ShortId::of(id);
    own_region_round_trip(q0, &format!("client {s}"), 3)?;
    let closed = Status::ClientClosed.reason();
    match Connection::connect(server, &request(id, 1, 2)) {
        Ok(_) => Err(format!("a third join of complete client {s} was accepted")),
        Err(ProbeError::Rejected(why)) if why == closed => {
            say!("another join of complete client {s}: rejected: {why}");
            Ok(())
        }
        Err(e) => Err(format!(
            "another join of client {s}: expected {closed:?}, got: {e}"
        )),
    }
}

fn churn(server: SocketAddrV4, clients: u32, secs: u64, hold: u64) -> Result<(), String> {
    let started = Instant::now();
    let until = started + Duration::from_secs(secs.min(MAX_SECS));
    let mut n = 0;
    while n < clients.min(MAX_FLOOD) && Instant::now() < until {
        let t = Instant::now();
        let id = fresh_id(u64::from(n) + 2);
        let mut c = Connection::connect(server, &request(id, 0, 1))
            .map_err(|e| format!("churn client {}: {e}", n + 1))?;
        say!(
            "churn: client {} ({}) connected in {:.1} s ({} MiB region)",
            n + 1,
            ShortId::of(id),
            t.elapsed().as_secs_f64(),
            c.region.size >> 20
        );
        let r = own_region_round_trip(&mut c, &format!("churn client {}", n + 1), n as u8);
        if r.is_ok() {
            std::thread::sleep(Duration::from_secs(hold.min(MAX_SECS)));
        }
        // The server frees the region before it answers the close, so the
        // next client finds it free.
        let closed = close(c, None, server, id, 1);
        r.and(closed)?;
        n += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    say!(
        "churn: {n} clients came and went in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if n == 0 {
        return Err("churn: no client connected".into());
    }
    Ok(())
}

/// The connect request in one Ethernet frame: a RoCE v2 datagram (UDP port
/// 4791) carrying a CM REQ MAD whose private data holds ours.
fn connect_request_in(frame: &[u8]) -> Option<ConnectRequest> {
    const ROCE_PORT: u16 = 4791;
    const CM_CLASS: u8 = 0x07;
    const CM_REQ: u16 = 0x0010;
    let be16 = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]))
    };
    if be16(12)? != 0x0800 {
        return None;
    }
    let ip = 14;
    let ihl = usize::from(frame.get(ip)? & 0x0f) * 4;
    if *frame.get(ip + 9)? != 17 {
        return None;
    }
    let udp = ip + ihl;
    if be16(udp + 2)? != ROCE_PORT {
        return None;
    }
    let bth = udp + 8;
    let mad = bth + 12 + 8; // BTH, DETH
    if *frame.get(mad + 1)? != CM_CLASS || be16(mad + 16)? != CM_REQ {
        return None;
    }
    let body = frame.get(mad..)?;
    let mut pattern = MAGIC.to_le_bytes().to_vec();
    pattern.extend_from_slice(&VERSION.to_le_bytes());
    let at = body.windows(pattern.len()).position(|w| w == pattern)?;
    ConnectRequest::decode(body.get(at..)?).ok()
}

fn sniff_id(iface: &str, secs: u64) -> Result<(), String> {
    let name = std::ffi::CString::new(iface).map_err(|_| "bad interface name".to_string())?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(format!("no interface {iface}"));
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return Err(format!(
            "packet socket: {} (needs CAP_NET_RAW)",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a descriptor we own from here on.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: sll is a valid sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            raw,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(format!(
            "bind to {iface}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let until = Instant::now() + Duration::from_secs(secs.min(MAX_SECS));
    let mut buf = vec![0u8; 65536];
    while Instant::now() < until {
        let mut pfd = libc::pollfd {
            fd: raw,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        if let Some(req) = connect_request_in(&buf[..n as usize]) {
            say!(
                "{:016x} (queue {} of {}, short id {})",
                req.client_id,
                req.queue,
                req.queue_count,
                ShortId::of(req.client_id)
            );
            return Ok(());
        }
    }
    Err(format!(
        "no fastswap connect request seen on {iface} in {secs} s"
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let at = |ip: Ipv4Addr, port: u16| SocketAddrV4::new(ip, port);
    let result = match cli.mode {
        Mode::Reject { server, port, kind } => reject(at(server, port), &kind),
        Mode::Isolation { server, port } => isolation(at(server, port)),
        Mode::Flood {
            server,
            port,
            from,
            clients,
            queues,
            expect_accepted,
            expect_reason,
            max_bytes,
            expect_release,
            hold,
        } => flood(
            at(server, port),
            FloodArgs {
                from,
                clients,
                queues,
                expect_accepted,
                expect_reason,
                max_bytes: max_bytes.map(|s| s.0),
                expect_release,
                hold,
            },
        ),
        Mode::Join {
            server,
            port,
            id,
            queue,
            queues,
            from,
            expect_reject,
        } => join(at(server, port), from, id, queue, queues, expect_reject),
        Mode::Impostor { server, port, from } => impostor(at(server, port), from),
        Mode::Churn {
            server,
            port,
            clients,
            secs,
            hold,
        } => churn(at(server, port), clients, secs, hold),
        Mode::SniffId { iface, secs } => sniff_id(&iface, secs),
        Mode::BadServer { port, kind, secs } => bad_server(port, &kind, secs),
        Mode::IdHash { id } => {
            say!("{}", ShortId::of(id));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "farmem-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP + BTH + DETH + MAD frame around `payload`
    /// (placed at `at` in the MAD, as the CM puts private data in a REQ).
    fn frame(port: u16, class: u8, attr: u16, payload: &[u8], at: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 12 + 8 + 256];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = 17;
        let udp = 34;
        f[udp + 2..udp + 4].copy_from_slice(&port.to_be_bytes());
        let mad = udp + 8 + 20;
        f[mad] = 1;
        f[mad + 1] = class;
        f[mad + 16..mad + 18].copy_from_slice(&attr.to_be_bytes());
        f[mad + at..mad + at + payload.len()].copy_from_slice(payload);
        f
    }

    #[test]
    fn finds_the_client_id_in_a_cm_req() {
        let req = request(0x0123_4567_89ab_cdef, 0, 6);
        let got = connect_request_in(&frame(4791, 0x07, 0x0010, &req, 24 + 80 + 36));
        assert_eq!(
            got.map(|r| (r.client_id, r.queue_count)),
            Some((0x0123_4567_89ab_cdef, 6))
        );
    }

    #[test]
    fn ignores_other_traffic() {
        let req = request(1, 0, 6);
        assert_eq!(
            connect_request_in(&frame(4792, 0x07, 0x0010, &req, 140)),
            None
        );
        assert_eq!(
            connect_request_in(&frame(4791, 0x04, 0x0010, &req, 140)),
            None
        );
        // A REP (the accept) carries the magic too.
        assert_eq!(
            connect_request_in(&frame(4791, 0x07, 0x0013, &req, 140)),
            None
        );
        assert_eq!(connect_request_in(&[0u8; 20]), None);
        assert_eq!(connect_request_in(&[]), None);
    }

    #[test]
    fn hex_ids() {
        assert_eq!(parse_hex("0xa11ce"), Ok(0xa11ce));
        assert_eq!(parse_hex("00000000000a11ce"), Ok(0xa11ce));
        assert!(parse_hex("xyz").is_err());
    }

    #[test]
    fn cli_parses_the_modes() {
        for args in [
            vec!["p", "reject", "192.0.2.1", "50000", "reserved"],
            vec![
                "p",
                "flood",
                "192.0.2.1",
                "50000",
                "--clients",
                "8",
                "--expect-reason",
                "budget",
                "--max-bytes",
                "768M",
                "--expect-release",
                "40",
            ],
            vec![
                "p",
                "join",
                "192.0.2.1",
                "50000",
                "--id",
                "0xab",
                "--queue",
                "1",
                "--queues",
                "6",
                "--from",
                "192.0.2.3",
                "--expect-reject",
                "another address",
            ],
            vec!["p", "impostor", "192.0.2.1", "50000", "--from", "192.0.2.3"],
            vec![
                "p",
                "churn",
                "192.0.2.1",
                "50000",
                "--clients",
                "3",
                "--secs",
                "60",
            ],
            vec!["p", "sniff-id", "eth0", "30"],
            vec!["p", "id-hash", "a11ce"],
        ] {
            assert!(Cli::try_parse_from(&args).is_ok(), "{args:?}");
        }
    }
}
