//! Thin owning wrappers over librdmacm and libibverbs (through rdma-sys).
//! Every raw call lives here; the server logic and farmem-probe's
//! connection (`probe_connection`) use these types only.

use crate::peer::Peer;
use rdma_sys::*;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};
use std::time::Duration;

/// The last OS error, as "`what`: error".
fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn check(rc: i32, what: &'static str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(os_error(what))
    }
}

fn non_null<T>(p: *mut T, what: &'static str) -> io::Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| os_error(what))
}

/// rdma_cma.h's RDMA_MAX_RESP_RES (not in rdma-sys): as responder
/// resources in rdma_accept, "as many as the peer asked for and the device
/// allows".
const RDMA_MAX_RESP_RES: u8 = 0xFF;

/// An RDMA CM event channel in non-blocking mode.
pub struct EventChannel(NonNull<rdma_event_channel>);

impl EventChannel {
    pub fn new() -> io::Result<Self> {
        // SAFETY: no preconditions.
        let ch = non_null(
            unsafe { rdma_create_event_channel() },
            "rdma_create_event_channel",
        )?;
        // SAFETY: ch is a valid channel; fd is its file descriptor.
        let fd = unsafe { ch.as_ref().fd };
        // SAFETY: fcntl on a descriptor we own.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        check(
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) },
            "fcntl",
        )?;
        Ok(Self(ch))
    }

    pub fn fd(&self) -> RawFd {
        // SAFETY: the channel is valid while self lives.
        unsafe { self.0.as_ref().fd }
    }

    /// The next event, or None when none is pending.
    pub fn next_event(&self) -> io::Result<Option<CmEvent>> {
        let mut ev = ptr::null_mut();
        // SAFETY: valid channel and out pointer.
        if unsafe { rdma_get_cm_event(self.0.as_ptr(), &mut ev) } != 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(NonNull::new(ev).map(CmEvent))
    }

    /// The next event, waiting up to `timeout` for one; None when none
    /// came.
    pub fn wait_event(&self, timeout: Duration) -> io::Result<Option<CmEvent>> {
        let mut pfd = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call's duration.
        match unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) } {
            n if n < 0 => Err(io::Error::last_os_error()),
            0 => Ok(None),
            _ => self.next_event(),
        }
    }

    /// A new id on the channel (TCP port space), to listen or connect with.
    pub fn create_id(&self) -> io::Result<CmId> {
        let mut id = ptr::null_mut();
        // SAFETY: valid channel and out pointer.
        check(
            unsafe {
                rdma_create_id(
                    self.0.as_ptr(),
                    &mut id,
                    ptr::null_mut(),
                    rdma_port_space::RDMA_PS_TCP,
                )
            },
            "rdma_create_id",
        )?;
        Ok(CmId(non_null(id, "rdma_create_id")?))
    }

    /// A listening id bound to `addr`.
    pub fn listen(&self, addr: SocketAddrV4, backlog: i32) -> io::Result<CmId> {
        let id = self.create_id()?;
        let mut sin = sockaddr_in(addr);
        // SAFETY: sin is a valid sockaddr_in for the call's duration.
        check(
            unsafe { rdma_bind_addr(id.0.as_ptr(), &mut sin as *mut libc::sockaddr_in as *mut _) },
            "rdma_bind_addr",
        )?;
        // SAFETY: a bound id.
        check(
            unsafe { rdma_listen(id.0.as_ptr(), backlog) },
            "rdma_listen",
        )?;
        Ok(id)
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: every id on the channel is destroyed before the channel
        // (the server drops its ids first, the probe's connection holds
        // its id in a field before the channel's).
        unsafe { rdma_destroy_event_channel(self.0.as_ptr()) };
    }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// One CM event; acknowledged when dropped.
pub struct CmEvent(NonNull<rdma_cm_event>);

#[derive(Debug, PartialEq, Eq)]
pub enum EventKind {
    ConnectRequest,
    /// An outgoing connection's address (an RDMA device) is resolved.
    AddrResolved,
    /// An outgoing connection's route is resolved.
    RouteResolved,
    /// The peer refused an outgoing connection.
    Rejected,
    Established,
    Disconnected,
    /// A disconnected connection's time wait ended.
    TimewaitExit,
    /// The id's RDMA device is going away: destroy the id.
    DeviceRemoval,
    /// The address the id is bound to moved (to another device or another
    /// hardware address).
    AddrChange,
    Other(u32),
}

impl CmEvent {
    fn raw(&self) -> &rdma_cm_event {
        // SAFETY: valid until acked in drop.
        unsafe { self.0.as_ref() }
    }

    pub fn kind(&self) -> EventKind {
        use rdma_cm_event_type::*;
        match self.raw().event {
            RDMA_CM_EVENT_CONNECT_REQUEST => EventKind::ConnectRequest,
            RDMA_CM_EVENT_ADDR_RESOLVED => EventKind::AddrResolved,
            RDMA_CM_EVENT_ROUTE_RESOLVED => EventKind::RouteResolved,
            RDMA_CM_EVENT_REJECTED => EventKind::Rejected,
            RDMA_CM_EVENT_ESTABLISHED => EventKind::Established,
            RDMA_CM_EVENT_DISCONNECTED => EventKind::Disconnected,
            RDMA_CM_EVENT_TIMEWAIT_EXIT => EventKind::TimewaitExit,
            RDMA_CM_EVENT_DEVICE_REMOVAL => EventKind::DeviceRemoval,
            RDMA_CM_EVENT_ADDR_CHANGE => EventKind::AddrChange,
            other => EventKind::Other(other),
        }
    }

    pub fn name(&self) -> String {
        // SAFETY: rdma_event_str returns a static string.
        let s = unsafe { std::ffi::CStr::from_ptr(rdma_event_str(self.raw().event)) };
        s.to_string_lossy().into_owned()
    }

    /// The event's status: for a reject, the CM's reason code.
    pub fn status(&self) -> i32 {
        self.raw().status
    }

    /// The connection's id (for a connect request, a new id we now own).
    pub fn id_key(&self) -> usize {
        self.raw().id as usize
    }

    /// Takes ownership of the new id of a connect request.
    pub fn take_conn_id(&self) -> Option<CmId> {
        NonNull::new(self.raw().id).map(CmId)
    }

    /// The private data of a connection event (a connect request, an
    /// established connection's accept, a reject).
    pub fn private_data(&self) -> &[u8] {
        // SAFETY: for connection events `param.conn` is the active member and
        // its private data is valid until the event is acked.
        unsafe {
            let c = &self.raw().param.conn;
            if c.private_data.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(
                    c.private_data as *const u8,
                    usize::from(c.private_data_len),
                )
            }
        }
    }
}

impl Drop for CmEvent {
    fn drop(&mut self) {
        // SAFETY: acking an event we got from rdma_get_cm_event, once.
        unsafe { rdma_ack_cm_event(self.0.as_ptr()) };
    }
}

/// An RDMA CM id, with its QP if one was created; destroyed on drop.
pub struct CmId(NonNull<rdma_cm_id>);

impl CmId {
    pub fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The peer of a connection (a connect request's new id): its address
    /// and GID as the CM reported them.
    pub fn peer(&self) -> Peer {
        // SAFETY: valid id; librdmacm fills `route.addr` (addresses and
        // GIDs) for a connect request's id before reporting the event.
        let addr = unsafe { &self.0.as_ref().route.addr };
        // SAFETY: the family field is common to every member of the union.
        let family = i32::from(unsafe { addr.dst_addr_union.dst_addr.sa_family });
        let ip = match family {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { addr.dst_addr_union.dst_sin };
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { addr.dst_addr_union.dst_sin6 };
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        };
        // SAFETY: `ibaddr` is the union's only member; plain bytes.
        let gid = unsafe { addr.addr.ibaddr.dgid.raw };
        Peer { ip, gid }
    }

    /// The RDMA device the connection arrived on.
    pub fn device(&self) -> Option<Device> {
        // SAFETY: valid id; `verbs` is set once the id is bound to a device.
        NonNull::new(unsafe { self.0.as_ref().verbs }).map(Device)
    }

    pub fn reject(&self, data: &[u8]) {
        // SAFETY: valid id; data outlives the call. A failed reject only
        // means the peer times out, so it is not reported.
        unsafe { rdma_reject(self.0.as_ptr(), data.as_ptr().cast(), data.len() as u8) };
    }

    /// Creates the connection's QP in `region`'s protection domain and
    /// accepts with `data`, taking as many RDMA reads from the client at
    /// once as it asked for, up to what the device serves per QP.
    pub fn accept(&self, region: &Region, data: &[u8]) -> io::Result<()> {
        self.create_qp(region.pd, region.cq, 1)?;
        let mut p = conn_param(data);
        // librdmacm grants min(the client's initiator depth, the device's
        // max_qp_rd_atom) for this value; the client's readahead keeps
        // several reads in flight per queue.
        p.responder_resources = RDMA_MAX_RESP_RES;
        p.initiator_depth = 0;
        // SAFETY: valid id with a QP; data outlives the call.
        check(
            unsafe { rdma_accept(self.0.as_ptr(), &mut p) },
            "rdma_accept",
        )
    }

    /// Creates the id's RC queue pair in protection domain `pd`, both its
    /// queues completing on `cq`, with room for `max_send_wr` sends and one
    /// receive of one SGE each.
    fn create_qp(
        &self,
        pd: NonNull<ibv_pd>,
        cq: NonNull<ibv_cq>,
        max_send_wr: u32,
    ) -> io::Result<()> {
        // SAFETY: a zeroed init attr is valid; fields are set below.
        let mut attr: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        attr.send_cq = cq.as_ptr();
        attr.recv_cq = cq.as_ptr();
        attr.qp_type = ibv_qp_type::IBV_QPT_RC;
        attr.cap.max_send_wr = max_send_wr;
        attr.cap.max_recv_wr = 1;
        attr.cap.max_send_sge = 1;
        attr.cap.max_recv_sge = 1;
        // SAFETY: valid id, PD and CQ of the same device.
        check(
            unsafe { rdma_create_qp(self.0.as_ptr(), pd.as_ptr(), &mut attr) },
            "rdma_create_qp",
        )
    }

    /// Destroys the id's QP now, if it has one (drop would, but only with
    /// the id): before the PD and CQ it was created on go.
    pub fn destroy_qp(&mut self) {
        // SAFETY: valid id; `qp` is null or the id's QP, and
        // rdma_destroy_qp sets it to null, so drop does not destroy it
        // again.
        unsafe {
            if !self.0.as_ref().qp.is_null() {
                rdma_destroy_qp(self.0.as_ptr());
            }
        }
    }

    /// Starts resolving `to`, from the local address `from` (any if None),
    /// to an RDMA device and address: an [`EventKind::AddrResolved`] event
    /// reports it done, within `timeout_ms`.
    pub fn resolve_addr(
        &self,
        from: Option<Ipv4Addr>,
        to: SocketAddrV4,
        timeout_ms: i32,
    ) -> io::Result<()> {
        let mut dst = sockaddr_in(to);
        let mut src = from.map(|ip| sockaddr_in(SocketAddrV4::new(ip, 0)));
        let src_ptr = src
            .as_mut()
            .map_or(ptr::null_mut(), |s| s as *mut libc::sockaddr_in as *mut _);
        // SAFETY: valid id; both addresses live through the call, which
        // copies them.
        check(
            unsafe {
                rdma_resolve_addr(
                    self.0.as_ptr(),
                    src_ptr,
                    &mut dst as *mut libc::sockaddr_in as *mut _,
                    timeout_ms,
                )
            },
            "rdma_resolve_addr",
        )
    }

    /// Starts resolving the route to the resolved address: an
    /// [`EventKind::RouteResolved`] event reports it done, within
    /// `timeout_ms`.
    pub fn resolve_route(&self, timeout_ms: i32) -> io::Result<()> {
        // SAFETY: valid id (resolving a route before the address fails).
        check(
            unsafe { rdma_resolve_route(self.0.as_ptr(), timeout_ms) },
            "rdma_resolve_route",
        )
    }

    /// Creates the QP of an outgoing connection for `page` (in its
    /// protection domain, completing on its CQ), with room for 4 sends.
    pub fn create_qp_for(&self, page: &LocalPage) -> io::Result<()> {
        self.create_qp(page.pd, page.cq, 4)
    }

    /// Connects, with `data` as the connect request's private data, asking
    /// for `initiator_depth` RDMA reads in flight at once and `retry_count`
    /// retries of a transfer the peer does not acknowledge. An
    /// [`EventKind::Established`] or [`EventKind::Rejected`] event answers.
    pub fn connect(&self, data: &[u8], initiator_depth: u8, retry_count: u8) -> io::Result<()> {
        let mut p = conn_param(data);
        p.initiator_depth = initiator_depth;
        p.retry_count = retry_count;
        // SAFETY: valid id with a QP; the private data is copied.
        check(
            unsafe { rdma_connect(self.0.as_ptr(), &mut p) },
            "rdma_connect",
        )
    }

    /// Posts a signaled RDMA WRITE (`write`) or READ of `page`'s whole
    /// buffer to or from the remote address `addr` with `rkey`; the
    /// completion lands in `page`'s CQ ([`LocalPage::poll_status`]).
    pub fn post_transfer(
        &self,
        page: &mut LocalPage,
        write: bool,
        addr: u64,
        rkey: u32,
    ) -> io::Result<()> {
        // SAFETY: valid MR.
        let lkey = unsafe { page.mr.as_ref().lkey };
        let mut sge = ibv_sge {
            addr: page.buf.as_mut_ptr() as u64,
            length: PAGE_SIZE as u32,
            lkey,
        };
        // SAFETY: a zeroed work request is valid; fields are set below.
        let mut wr: ibv_send_wr = unsafe { std::mem::zeroed() };
        wr.sg_list = &mut sge;
        wr.num_sge = 1;
        wr.opcode = if write {
            ibv_wr_opcode::IBV_WR_RDMA_WRITE
        } else {
            ibv_wr_opcode::IBV_WR_RDMA_READ
        };
        wr.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
        wr.wr.rdma = rdma_t {
            remote_addr: addr,
            rkey,
        };
        self.post_send(&mut wr)
    }

    /// Posts `wr` (which the provider copies) on the connection's QP.
    fn post_send(&self, wr: &mut ibv_send_wr) -> io::Result<()> {
        // SAFETY: valid id; `qp` is null or the id's QP.
        let qp = unsafe { self.0.as_ref().qp };
        if qp.is_null() {
            return Err(io::Error::other("the connection has no queue pair"));
        }
        let mut bad = ptr::null_mut();
        // SAFETY: a live QP and a well-formed request whose memory (its
        // SGEs) outlives the call; the provider copies the request.
        match unsafe { ibv_post_send(qp, wr, &mut bad) } {
            0 => Ok(()),
            rc => Err(io::Error::from_raw_os_error(rc.abs())),
        }
    }

    /// The RDMA reads the connected QP takes from the peer at once, as
    /// negotiated (its `max_dest_rd_atomic`).
    pub fn read_depth(&self) -> io::Result<u8> {
        // SAFETY: valid id; `qp` is null or the id's QP.
        let qp = unsafe { self.0.as_ref().qp };
        if qp.is_null() {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "id has no QP"));
        }
        // SAFETY: zeroed attributes are valid; filled by the call.
        let mut attr: ibv_qp_attr = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut init: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        let mask = ibv_qp_attr_mask::IBV_QP_MAX_DEST_RD_ATOMIC.0 as i32;
        // SAFETY: valid QP; both attribute structs outlive the call.
        check(
            unsafe { ibv_query_qp(qp, &mut attr, mask, &mut init) },
            "ibv_query_qp",
        )?;
        Ok(attr.max_dest_rd_atomic)
    }

    /// The connection's QP, as a key (the async events of a device name
    /// the QP they are about this way).
    pub fn qp_key(&self) -> Option<usize> {
        // SAFETY: valid id; `qp` is null or the id's QP.
        let qp = unsafe { self.0.as_ref().qp };
        (!qp.is_null()).then_some(qp as usize)
    }

    /// Posts a keep-alive probe: a signaled zero-length RDMA WRITE, whose
    /// completion (with `wr_id`) lands in the CQ of the region the QP was
    /// created for. A zero-length RDMA operation needs no valid remote
    /// address or key (InfiniBand spec C9-88), and every QP the CM
    /// connects allows remote writes, so the peer's device answers it
    /// without touching memory; the peer's software sees nothing.
    pub fn post_probe(&self, wr_id: u64) -> io::Result<()> {
        // SAFETY: a zeroed work request is valid: no SGEs, no next request.
        let mut wr: ibv_send_wr = unsafe { std::mem::zeroed() };
        wr.wr_id = wr_id;
        wr.next = ptr::null_mut();
        wr.sg_list = ptr::null_mut();
        wr.num_sge = 0;
        wr.opcode = ibv_wr_opcode::IBV_WR_RDMA_WRITE;
        wr.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
        wr.wr.rdma = rdma_t {
            remote_addr: 0,
            rkey: 0,
        };
        // No memory is referenced.
        self.post_send(&mut wr)
    }

    pub fn disconnect(&self) {
        // SAFETY: valid id; disconnecting an unconnected id just fails.
        unsafe { rdma_disconnect(self.0.as_ptr()) };
    }
}

/// Connection parameters with `data` as the private data and RNR retries
/// without end (7); the rest zero.
fn conn_param(data: &[u8]) -> rdma_conn_param {
    // SAFETY: zeroed conn params are valid; fields are set below.
    let mut p: rdma_conn_param = unsafe { std::mem::zeroed() };
    p.private_data = data.as_ptr().cast();
    p.private_data_len = data.len() as u8;
    p.rnr_retry_count = 7;
    p
}

impl Drop for CmId {
    fn drop(&mut self) {
        // SAFETY: valid id; its QP (if any) is destroyed before the id.
        unsafe {
            if !self.0.as_ref().qp.is_null() {
                rdma_destroy_qp(self.0.as_ptr());
            }
            rdma_destroy_id(self.0.as_ptr());
        }
    }
}

/// An RDMA device context (librdmacm's, shared by every id on the device),
/// to register a region on from another thread.
///
/// # Invariants
///
/// Valid while some `CmId` on the device exists or [`Devices`] holds it:
/// librdmacm closes a device only when no id and no `rdma_get_devices`
/// list refers to it. The server keeps the id of the connection a region
/// is registered for until the registration is done, and holds every
/// device it has regions on (see [`Devices`]).
pub struct Device(NonNull<ibv_context>);

// SAFETY: libibverbs calls on a context are thread-safe; the pointer is
// only used for them.
unsafe impl Send for Device {}

impl Device {
    /// The device context, as a key: connections on one device share it.
    pub fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The RDMA devices librdmacm has open, held by the server so that none is
/// closed while the server still has something on it, and released once a
/// removed device has nothing of the server's left.
///
/// A driver that cannot take a device away from a running process (Soft-RoCE
/// has no `disassociate_ucontext`) blocks the device's removal until every
/// verbs context on it is closed. librdmacm opens one context per device
/// (the `verbs` of every id on it) and keeps it open after the device's
/// last id is gone: it closes it only when a device list taken through
/// `rdma_get_devices` no longer has the device and no id or list refers to
/// it (`sync_devices_list`, then `remove_cma_dev`). The server holds one
/// such list ([`Devices::hold`]): it finds removed devices by comparing the
/// devices of the list with libibverbs' current ones ([`Devices::gone`]),
/// and, once it has destroyed everything of its own on them (queue pairs,
/// ids, regions), takes a new list and frees the old one
/// ([`Devices::resync`]), which closes them.
///
/// librdmacm (rdma-core 44, Debian 12's, at least) skips that comparison
/// when no device at all is left: `sync_devices_list` returns early on an
/// empty list, so the last device's context would stay open for good and
/// its removal never finish. Then [`Devices::resync`] closes the context's
/// two descriptors itself, atomically replacing them with `/dev/null`: the
/// kernel releases the context (and anything still on it), the removal
/// goes on, and the descriptor numbers stay taken until librdmacm closes
/// the stale context, once a device is back.
pub struct Devices(Option<NonNull<*mut ibv_context>>);

/// A held device that libibverbs no longer lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneDevice {
    /// As [`Device::key`].
    pub key: usize,
    pub name: String,
}

impl Devices {
    /// Holds every device librdmacm finds now (opening those not yet open).
    pub fn hold() -> Self {
        let mut n = 0;
        // SAFETY: no preconditions; returns a null-terminated list (with a
        // reference on each device) or null.
        Self(NonNull::new(unsafe { rdma_get_devices(&mut n) }))
    }

    fn contexts(&self) -> Vec<NonNull<ibv_context>> {
        let mut out = Vec::new();
        let Some(list) = self.0 else {
            return out;
        };
        for i in 0.. {
            // SAFETY: the list is null-terminated and valid until freed.
            let ctx = unsafe { *list.as_ptr().add(i) };
            match NonNull::new(ctx) {
                Some(c) => out.push(c),
                None => break,
            }
        }
        out
    }

    /// Whether the device (as [`Device::key`]) is held.
    pub fn holds(&self, key: usize) -> bool {
        self.contexts().iter().any(|c| c.as_ptr() as usize == key)
    }

    /// The held devices that libibverbs no longer lists: removed, or being
    /// removed (a device leaves the list as its removal starts, before the
    /// removal waits for the contexts on it to close).
    pub fn gone(&self) -> io::Result<Vec<GoneDevice>> {
        let live = live_devices()?;
        let mut out = Vec::new();
        for ctx in self.contexts() {
            // SAFETY: a held context is open, and so is its device.
            let dev = unsafe { ctx.as_ref().device };
            if live.contains(&(dev as usize)) {
                continue;
            }
            // SAFETY: as above; the name is a string in the device.
            let name = unsafe { std::ffi::CStr::from_ptr(ibv_get_device_name(dev)) };
            out.push(GoneDevice {
                key: ctx.as_ptr() as usize,
                name: name.to_string_lossy().into_owned(),
            });
        }
        Ok(out)
    }

    /// Holds the devices librdmacm finds now and lets go of those held
    /// before: librdmacm then closes each removed device that nothing else
    /// refers to.
    ///
    /// `released` are removed devices (from [`Devices::gone`]) on which the
    /// server has nothing left: no id, queue pair, completion queue, memory
    /// region, protection domain or asynchronous event reader. When no
    /// device at all is left, librdmacm would keep their contexts open (see
    /// the type's documentation): their descriptors are closed here, and
    /// returned is how that went for each (none when librdmacm closes them).
    pub fn resync(&mut self, released: &[usize]) -> Vec<(usize, io::Result<()>)> {
        let mut n = 0;
        // SAFETY: as in `hold`.
        let new = NonNull::new(unsafe { rdma_get_devices(&mut n) });
        let mut closed = Vec::new();
        if new.is_none() {
            for ctx in self.contexts() {
                let key = ctx.as_ptr() as usize;
                if released.contains(&key) {
                    // SAFETY: held, so open; the caller destroyed everything
                    // of the server's on it, and no other thread uses it.
                    closed.push((key, unsafe { detach_descriptors(ctx) }));
                }
            }
        }
        if let Some(old) = std::mem::replace(&mut self.0, new) {
            // SAFETY: a list from rdma_get_devices, freed once.
            unsafe { rdma_free_devices(old.as_ptr()) };
        }
        closed
    }
}

impl Drop for Devices {
    fn drop(&mut self) {
        if let Some(list) = self.0.take() {
            // SAFETY: a list from rdma_get_devices, freed once.
            unsafe { rdma_free_devices(list.as_ptr()) };
        }
    }
}

/// The devices libibverbs lists now, as `ibv_device` addresses.
fn live_devices() -> io::Result<Vec<usize>> {
    let mut n = 0;
    // SAFETY: no preconditions; returns a null-terminated list or null.
    let list = non_null(
        unsafe { ibv_get_device_list(&mut n) },
        "ibv_get_device_list",
    )?;
    let mut out = Vec::new();
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: the list has n entries.
        out.push(unsafe { *list.as_ptr().add(i) } as usize);
    }
    // SAFETY: the list from ibv_get_device_list, freed once; only the
    // addresses are kept, for comparison.
    unsafe { ibv_free_device_list(list.as_ptr()) };
    Ok(out)
}

/// Replaces a context's command and event descriptors with `/dev/null`
/// (`dup3`: the numbers are never free for another open to take). The
/// kernel releases the context once neither is open; calls on it fail from
/// then on, and closing it closes `/dev/null`.
///
/// # Safety
///
/// `ctx` is an open context that no other thread uses, with no mapping of
/// its command descriptor left (the server destroyed its queue pairs and
/// completion queues on it; Soft-RoCE maps nothing else).
unsafe fn detach_descriptors(ctx: NonNull<ibv_context>) -> io::Result<()> {
    // SAFETY: per the caller, an open context.
    let (cmd_fd, async_fd) = unsafe { (ctx.as_ref().cmd_fd, ctx.as_ref().async_fd) };
    // SAFETY: a constant path; the descriptor is closed below.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if null < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut result = Ok(());
    for fd in [cmd_fd, async_fd] {
        // SAFETY: `fd` is the context's own descriptor (per the caller);
        // dup3 closes its file and puts /dev/null in its place.
        if fd >= 0 && unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) } < 0 {
            result = Err(io::Error::last_os_error());
        }
    }
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(null) };
    result
}

/// The asynchronous events of a device (errors on its queue pairs, CQs and
/// ports), read without blocking.
///
/// # Invariants
///
/// As for [`Device`]: valid while some `CmId` on the device exists. The
/// server keeps one while it has connections on the device and drops it
/// before the last of them, and before it releases a removed device.
pub struct AsyncEvents(NonNull<ibv_context>);

/// What an asynchronous event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncTarget {
    /// A queue pair, by [`CmId::qp_key`].
    Qp(usize),
    /// A completion queue, by [`Region::cq_key`].
    Cq(usize),
    Port(i32),
    /// The whole device.
    Device,
    /// A shared receive queue or work queue (the server has none).
    Other,
}

/// One asynchronous event, copied out and acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncEvent {
    /// The `ibv_event_type` number.
    pub code: u32,
    pub target: AsyncTarget,
}

/// `struct ibv_async_event` with the event type as a plain number: a
/// kernel newer than these bindings may report a type they do not know,
/// which must not become an invalid Rust enum value.
#[repr(C)]
struct RawAsyncEvent {
    element: ibv_async_event_element_t,
    event_type: u32,
}

const _: () = assert!(
    std::mem::size_of::<RawAsyncEvent>() == std::mem::size_of::<ibv_async_event>()
        && std::mem::align_of::<RawAsyncEvent>() == std::mem::align_of::<ibv_async_event>()
);

impl AsyncEvent {
    /// The event's name, as libibverbs spells it.
    pub fn name(&self) -> &'static str {
        const NAMES: [&str; 20] = [
            "CQ error",
            "QP fatal error",
            "QP request error",
            "QP access error",
            "communication established",
            "SQ drained",
            "path migrated",
            "path migration error",
            "device fatal error",
            "port active",
            "port error",
            "LID change",
            "P_Key change",
            "SM change",
            "SRQ error",
            "SRQ limit reached",
            "last WQE reached",
            "client reregistration",
            "GID table change",
            "WQ fatal error",
        ];
        NAMES
            .get(self.code as usize)
            .copied()
            .unwrap_or("unknown event")
    }

    /// Whether the event means its queue pair is broken for good.
    pub fn breaks_qp(&self) -> bool {
        matches!(self.target, AsyncTarget::Qp(_)) && matches!(self.code, 1 | 2 | 3 | 7)
    }

    fn target_of(code: u32, element: &ibv_async_event_element_t) -> AsyncTarget {
        // SAFETY: the event type says which member of the union is set.
        unsafe {
            match code {
                0 => AsyncTarget::Cq(element.cq as usize),
                1..=7 | 16 => AsyncTarget::Qp(element.qp as usize),
                8 => AsyncTarget::Device,
                9..=13 | 17 | 18 => AsyncTarget::Port(element.port_num),
                _ => AsyncTarget::Other,
            }
        }
    }
}

impl AsyncEvents {
    /// Reads `device`'s events from now on, in non-blocking mode.
    pub fn new(device: &Device) -> io::Result<Self> {
        let ctx = device.0;
        // SAFETY: a valid context (Device's invariant).
        let fd = unsafe { ctx.as_ref().async_fd };
        // SAFETY: fcntl on the context's own descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        check(
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) },
            "fcntl",
        )?;
        Ok(Self(ctx))
    }

    pub fn fd(&self) -> RawFd {
        // SAFETY: valid context (invariant).
        unsafe { self.0.as_ref().async_fd }
    }

    /// The next event, already acknowledged, or None when none is pending.
    /// Acknowledging at once lets the QPs and CQs be destroyed at any time
    /// (destroying one waits for its events to be acknowledged); the
    /// caller acts on the copy before it destroys anything.
    pub fn next_event(&self) -> io::Result<Option<AsyncEvent>> {
        // SAFETY: all-zero is a valid event to be filled in.
        let mut raw: RawAsyncEvent = unsafe { std::mem::zeroed() };
        let p = &mut raw as *mut RawAsyncEvent as *mut ibv_async_event;
        // SAFETY: valid context; RawAsyncEvent has ibv_async_event's layout
        // (the same union, then a C enum, which is an unsigned int).
        if unsafe { ibv_get_async_event(self.0.as_ptr(), p) } != 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let ev = AsyncEvent {
            code: raw.event_type,
            target: AsyncEvent::target_of(raw.event_type, &raw.element),
        };
        // SAFETY: an event just returned by ibv_get_async_event, acked once.
        unsafe { ibv_ack_async_event(p) };
        Ok(Some(ev))
    }
}

/// The I/O virtual address every region is registered at.
pub const REGION_IOVA: u64 = 0;

/// One client's far memory: its own protection domain, completion queue,
/// and a registered region. Other clients' QPs live in other PDs, so they
/// cannot use this region's rkey.
pub struct Region {
    /// The device context, as [`Device::key`].
    device: usize,
    pd: NonNull<ibv_pd>,
    cq: NonNull<ibv_cq>,
    mr: NonNull<ibv_mr>,
    mem: NonNull<libc::c_void>,
    size: usize,
}

impl Region {
    /// Allocates and registers `size` bytes on `device`. Pins (and so
    /// zeroes) every page: seconds for gigabytes, so not on the event loop.
    /// `cq_entries` must cover one completion per QP of the client: the
    /// keep-alive probes (one at a time per QP) are all the CQ ever holds.
    pub fn new(device: &Device, size: usize, cq_entries: i32) -> io::Result<Self> {
        let ctx = device.0.as_ptr();
        // SAFETY: valid device context.
        let pd = non_null(unsafe { ibv_alloc_pd(ctx) }, "ibv_alloc_pd")?;
        let mut r = PartialRegion {
            pd,
            cq: None,
            mr: None,
            mem: None,
            size,
        };
        // SAFETY: valid device context.
        r.cq = Some(non_null(
            unsafe { ibv_create_cq(ctx, cq_entries.max(1), ptr::null_mut(), ptr::null_mut(), 0) },
            "ibv_create_cq",
        )?);
        // SAFETY: a fresh anonymous mapping; registration pins it.
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        r.mem = NonNull::new(mem);
        let access = ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0
            | ibv_access_flags::IBV_ACCESS_REMOTE_READ.0
            | ibv_access_flags::IBV_ACCESS_REMOTE_WRITE.0;
        // Zero-based: remote addresses are offsets into the region, so the
        // accept tells a client nothing about the server's address space.
        // SAFETY: the mapping is `size` bytes and lives until dereg.
        r.mr = Some(non_null(
            unsafe { ibv_reg_mr_iova2(pd.as_ptr(), mem, size, REGION_IOVA, access) },
            "ibv_reg_mr_iova2",
        )?);
        r.finish(device.key())
    }

    /// The device the region is registered on, as [`Device::key`].
    pub fn device_key(&self) -> usize {
        self.device
    }

    /// The remote address of the region's first byte (its I/O virtual
    /// address): always [`REGION_IOVA`].
    pub fn iova(&self) -> u64 {
        REGION_IOVA
    }

    pub fn rkey(&self) -> u32 {
        // SAFETY: valid MR.
        unsafe { self.mr.as_ref().rkey }
    }

    pub fn size(&self) -> u64 {
        self.size as u64
    }

    /// The completion queue, as a key (see [`AsyncTarget::Cq`]).
    pub fn cq_key(&self) -> usize {
        self.cq.as_ptr() as usize
    }

    /// Takes every completion waiting in the region's CQ (without
    /// blocking) and appends it to `out`.
    pub fn poll(&self, out: &mut Vec<Completion>) -> io::Result<()> {
        const BATCH: usize = 8;
        loop {
            // SAFETY: all-zero work completions are valid to be filled in.
            let mut wc: [ibv_wc; BATCH] = unsafe { std::mem::zeroed() };
            let n = poll_cq(self.cq, &mut wc)?;
            for c in &wc[..n] {
                let result = if c.status == ibv_wc_status::IBV_WC_SUCCESS {
                    Ok(())
                } else {
                    // SAFETY: ibv_wc_status_str returns a static string for
                    // any value.
                    let s = unsafe { std::ffi::CStr::from_ptr(ibv_wc_status_str(c.status)) };
                    let vendor = match c.vendor_err {
                        0 => String::new(),
                        v => format!(", vendor error {v:#x}"),
                    };
                    Err(format!(
                        "{} (status {}{vendor})",
                        s.to_string_lossy(),
                        c.status
                    ))
                };
                out.push(Completion {
                    wr_id: c.wr_id,
                    result,
                });
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }
}

/// Takes up to `wc.len()` completions from `cq` without blocking; how
/// many it took.
fn poll_cq(cq: NonNull<ibv_cq>, wc: &mut [ibv_wc]) -> io::Result<usize> {
    // SAFETY: a valid CQ and room for `wc.len()` entries.
    let n = unsafe { ibv_poll_cq(cq.as_ptr(), wc.len() as i32, wc.as_mut_ptr()) };
    usize::try_from(n).map_err(|_| io::Error::other(format!("ibv_poll_cq failed ({n})")))
}

/// A work completion: its request's id, and whether it succeeded (or
/// why not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub wr_id: u64,
    pub result: Result<(), String>,
}

// SAFETY: the PD, CQ and MR are used through thread-safe libibverbs calls
// only, and the mapping belongs to the whole process; a region is built on
// a blocking thread and then used and freed on the event loop.
unsafe impl Send for Region {}

/// A region under construction, torn down in reverse on early return.
struct PartialRegion {
    pd: NonNull<ibv_pd>,
    cq: Option<NonNull<ibv_cq>>,
    mr: Option<NonNull<ibv_mr>>,
    mem: Option<NonNull<libc::c_void>>,
    size: usize,
}

impl PartialRegion {
    fn finish(mut self, device: usize) -> io::Result<Region> {
        let (Some(cq), Some(mr), Some(mem)) = (self.cq.take(), self.mr.take(), self.mem.take())
        else {
            return Err(io::Error::other("incomplete region"));
        };
        let r = Region {
            device,
            pd: self.pd,
            cq,
            mr,
            mem,
            size: self.size,
        };
        std::mem::forget(self);
        Ok(r)
    }
}

fn teardown(
    pd: Option<NonNull<ibv_pd>>,
    cq: Option<NonNull<ibv_cq>>,
    mr: Option<NonNull<ibv_mr>>,
    mem: Option<NonNull<libc::c_void>>,
    size: usize,
) {
    // SAFETY: each resource is valid and released once, MR before memory,
    // PD last, after the QPs using it were destroyed.
    unsafe {
        if let Some(mr) = mr {
            ibv_dereg_mr(mr.as_ptr());
        }
        if let Some(mem) = mem {
            libc::munmap(mem.as_ptr(), size);
        }
        if let Some(cq) = cq {
            ibv_destroy_cq(cq.as_ptr());
        }
        if let Some(pd) = pd {
            ibv_dealloc_pd(pd.as_ptr());
        }
    }
}

impl Drop for PartialRegion {
    fn drop(&mut self) {
        teardown(Some(self.pd), self.cq, self.mr, self.mem, self.size);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        teardown(
            Some(self.pd),
            Some(self.cq),
            Some(self.mr),
            Some(self.mem),
            self.size,
        );
    }
}

/// The size of a [`LocalPage`].
pub const PAGE_SIZE: usize = 4096;

/// A one-page buffer registered for local access in its own protection
/// domain, with a completion queue: what an outgoing connection (the
/// probe's) writes remote pages from and reads them into.
///
/// # Invariants
///
/// As for [`Device`]: dropped while the `CmId` it was made for still
/// exists, after that id's QP is destroyed ([`CmId::destroy_qp`]).
pub struct LocalPage {
    pd: NonNull<ibv_pd>,
    cq: NonNull<ibv_cq>,
    mr: NonNull<ibv_mr>,
    buf: Box<[u8; PAGE_SIZE]>,
}

impl LocalPage {
    /// A zeroed page registered on `device`, with a 16-entry CQ.
    pub fn new(device: &Device) -> io::Result<Self> {
        let ctx = device.0.as_ptr();
        // SAFETY: a valid device context (Device's invariant).
        let pd = NonNull::new(unsafe { ibv_alloc_pd(ctx) });
        // SAFETY: as above.
        let cq =
            NonNull::new(unsafe { ibv_create_cq(ctx, 16, ptr::null_mut(), ptr::null_mut(), 0) });
        let (Some(pd), Some(cq)) = (pd, cq) else {
            let e = os_error("ibv_alloc_pd/ibv_create_cq");
            teardown(pd, cq, None, None, 0);
            return Err(e);
        };
        let mut buf = Box::new([0u8; PAGE_SIZE]);
        let access = ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0 as i32;
        // SAFETY: a valid PD; the buffer is boxed (it does not move) and
        // outlives the MR, deregistered in drop before the box is freed.
        let mr = unsafe { ibv_reg_mr(pd.as_ptr(), buf.as_mut_ptr().cast(), PAGE_SIZE, access) };
        let Some(mr) = NonNull::new(mr) else {
            let e = os_error("ibv_reg_mr");
            teardown(Some(pd), Some(cq), None, None, 0);
            return Err(e);
        };
        Ok(Self { pd, cq, mr, buf })
    }

    pub fn buffer(&mut self) -> &mut [u8; PAGE_SIZE] {
        &mut self.buf
    }

    /// The status of the next work completion (0 is success), or None when
    /// there is none yet.
    pub fn poll_status(&self) -> io::Result<Option<u32>> {
        // SAFETY: an all-zero work completion is valid to be filled in.
        let mut wc: [ibv_wc; 1] = unsafe { std::mem::zeroed() };
        Ok((poll_cq(self.cq, &mut wc)? > 0).then_some(wc[0].status))
    }
}

impl Drop for LocalPage {
    fn drop(&mut self) {
        teardown(Some(self.pd), Some(self.cq), Some(self.mr), None, 0);
    }
}
