//! Thin owning wrappers over librdmacm and libibverbs (through rdma-sys).
//! Every raw call lives here; the server logic uses these types only.

use crate::peer::Peer;
use rdma_sys::*;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};

fn check(rc: i32, what: &'static str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

fn non_null<T>(p: *mut T, what: &'static str) -> io::Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{what}: {e}"))
    })
}

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

    /// A listening id bound to `addr`.
    pub fn listen(&self, addr: SocketAddrV4, backlog: i32) -> io::Result<CmId> {
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
        let id = CmId(non_null(id, "rdma_create_id")?);
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
        // (the server drops its ids first).
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
    Established,
    Disconnected,
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
            RDMA_CM_EVENT_ESTABLISHED => EventKind::Established,
            RDMA_CM_EVENT_DISCONNECTED | RDMA_CM_EVENT_TIMEWAIT_EXIT => EventKind::Disconnected,
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

    /// The connection's id (for a connect request, a new id we now own).
    pub fn id_key(&self) -> usize {
        self.raw().id as usize
    }

    /// Takes ownership of the new id of a connect request.
    pub fn take_conn_id(&self) -> Option<CmId> {
        NonNull::new(self.raw().id).map(CmId)
    }

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

    /// RDMA reads the client wants to have outstanding against us.
    pub fn initiator_depth(&self) -> u8 {
        // SAFETY: as in private_data.
        unsafe { self.raw().param.conn.initiator_depth }
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
    /// accepts with `data`.
    pub fn accept(&self, region: &Region, data: &[u8], responder_resources: u8) -> io::Result<()> {
        // SAFETY: a zeroed init attr is valid; fields are set below.
        let mut attr: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        attr.send_cq = region.cq.as_ptr();
        attr.recv_cq = region.cq.as_ptr();
        attr.qp_type = ibv_qp_type::IBV_QPT_RC;
        attr.cap.max_send_wr = 1;
        attr.cap.max_recv_wr = 1;
        attr.cap.max_send_sge = 1;
        attr.cap.max_recv_sge = 1;
        // SAFETY: valid id, PD and CQ of the same device.
        check(
            unsafe { rdma_create_qp(self.0.as_ptr(), region.pd.as_ptr(), &mut attr) },
            "rdma_create_qp",
        )?;
        // SAFETY: zeroed conn params are valid; fields are set below.
        let mut p: rdma_conn_param = unsafe { std::mem::zeroed() };
        p.private_data = data.as_ptr().cast();
        p.private_data_len = data.len() as u8;
        p.responder_resources = responder_resources;
        p.initiator_depth = 0;
        p.rnr_retry_count = 7;
        // SAFETY: valid id with a QP; data outlives the call.
        check(
            unsafe { rdma_accept(self.0.as_ptr(), &mut p) },
            "rdma_accept",
        )
    }

    pub fn disconnect(&self) {
        // SAFETY: valid id; disconnecting an unconnected id just fails.
        unsafe { rdma_disconnect(self.0.as_ptr()) };
    }
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
/// Valid while some `CmId` on the device exists: librdmacm closes a device
/// only after its last id is destroyed. The server keeps the id of the
/// connection a region is registered for until the registration is done.
pub struct Device(NonNull<ibv_context>);

// SAFETY: libibverbs calls on a context are thread-safe; the pointer is
// only used for them.
unsafe impl Send for Device {}

/// The I/O virtual address every region is registered at.
pub const REGION_IOVA: u64 = 0;

/// One client's far memory: its own protection domain, completion queue,
/// and a registered region. Other clients' QPs live in other PDs, so they
/// cannot use this region's rkey.
pub struct Region {
    pd: NonNull<ibv_pd>,
    cq: NonNull<ibv_cq>,
    mr: NonNull<ibv_mr>,
    mem: NonNull<libc::c_void>,
    size: usize,
}

impl Region {
    /// Allocates and registers `size` bytes on `device`. Pins (and so
    /// zeroes) every page: seconds for gigabytes, so not on the event loop.
    pub fn new(device: &Device, size: usize) -> io::Result<Self> {
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
            unsafe { ibv_create_cq(ctx, 4, ptr::null_mut(), ptr::null_mut(), 0) },
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
        r.finish()
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
    fn finish(mut self) -> io::Result<Region> {
        let (Some(cq), Some(mr), Some(mem)) = (self.cq.take(), self.mr.take(), self.mem.take())
        else {
            return Err(io::Error::other("incomplete region"));
        };
        let r = Region {
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
    pd: NonNull<ibv_pd>,
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
        ibv_dealloc_pd(pd.as_ptr());
    }
}

impl Drop for PartialRegion {
    fn drop(&mut self) {
        teardown(self.pd, self.cq, self.mr, self.mem, self.size);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        teardown(
            self.pd,
            Some(self.cq),
            Some(self.mr),
            Some(self.mem),
            self.size,
        );
    }
}
