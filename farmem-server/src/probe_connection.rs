//! The probe's connection: a userspace client of farmem-server (used by
//! farmem-probe, not by the server, whose record of its clients is
//! `registry`): connect one queue with chosen private data, then read and
//! write pages of a region with one-sided RDMA.

use crate::protocol::{self, AcceptError, AcceptReply, Status};
use rdma_sys::*;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ptr::{self, NonNull};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("server rejected the connection: {0}")]
    Rejected(String),
    #[error("unexpected connection event {0}")]
    Unexpected(String),
    #[error("the server's accept is unusable: {0}")]
    BadAccept(#[from] AcceptError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// One connected queue with a one-page local buffer.
pub struct Connection {
    channel: NonNull<rdma_event_channel>,
    id: NonNull<rdma_cm_id>,
    pd: *mut ibv_pd,
    cq: *mut ibv_cq,
    mr: *mut ibv_mr,
    buf: Box<[u8; 4096]>,
    pub region: AcceptReply,
}

/// The reason carried by a reject, or the CM's status.
fn reject_reason(ev: &rdma_cm_event) -> String {
    // SAFETY: for a reject, `param.conn` holds the consumer's private data.
    let data = unsafe {
        let c = &ev.param.conn;
        if c.private_data.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(c.private_data as *const u8, usize::from(c.private_data_len))
        }
    };
    match protocol::decode_reject(data) {
        Some(code) => match Status::from_u16(code) {
            Some(s) => s.reason().to_string(),
            None => format!("unknown reason (code {code})"),
        },
        None => format!("no fastswap reason (status {})", ev.status),
    }
}

impl Connection {
    /// Connects to `server` sending `private` as the connect request.
    pub fn connect(server: SocketAddrV4, private: &[u8]) -> Result<Self, ProbeError> {
        Self::connect_from(None, server, private)
    }

    /// Connects to `server` from the local address `from` (any, if None),
    /// sending `private` as the connect request.
    pub fn connect_from(
        from: Option<Ipv4Addr>,
        server: SocketAddrV4,
        private: &[u8],
    ) -> Result<Self, ProbeError> {
        // SAFETY: no preconditions.
        let channel = NonNull::new(unsafe { rdma_create_event_channel() })
            .ok_or_else(|| os_err("rdma_create_event_channel"))?;
        let mut id = ptr::null_mut();
        // SAFETY: valid channel and out pointer.
        if unsafe {
            rdma_create_id(
                channel.as_ptr(),
                &mut id,
                ptr::null_mut(),
                rdma_port_space::RDMA_PS_TCP,
            )
        } != 0
        {
            // SAFETY: the channel has no ids.
            unsafe { rdma_destroy_event_channel(channel.as_ptr()) };
            return Err(os_err("rdma_create_id").into());
        }
        let id = NonNull::new(id).ok_or_else(|| os_err("rdma_create_id"))?;
        let mut c = Connection {
            channel,
            id,
            pd: ptr::null_mut(),
            cq: ptr::null_mut(),
            mr: ptr::null_mut(),
            buf: Box::new([0u8; 4096]),
            region: AcceptReply {
                addr: 0,
                rkey: 0,
                size: 0,
                secret: 0,
            },
        };
        let mut dst = sockaddr_in(server);
        let mut src = from.map(|ip| sockaddr_in(SocketAddrV4::new(ip, 0)));
        let src_ptr = src
            .as_mut()
            .map_or(ptr::null_mut(), |s| s as *mut libc::sockaddr_in as *mut _);
        // SAFETY: valid id; the addresses are copied.
        if unsafe {
            rdma_resolve_addr(
                id.as_ptr(),
                src_ptr,
                &mut dst as *mut libc::sockaddr_in as *mut _,
                2000,
            )
        } != 0
        {
            return Err(os_err("rdma_resolve_addr").into());
        }
        c.expect(
            rdma_cm_event_type::RDMA_CM_EVENT_ADDR_RESOLVED,
            "address resolution",
        )?;
        // SAFETY: valid id with a resolved address.
        if unsafe { rdma_resolve_route(id.as_ptr(), 2000) } != 0 {
            return Err(os_err("rdma_resolve_route").into());
        }
        c.expect(
            rdma_cm_event_type::RDMA_CM_EVENT_ROUTE_RESOLVED,
            "route resolution",
        )?;
        c.setup_qp()?;
        // SAFETY: zeroed conn params are valid; fields set below.
        let mut p: rdma_conn_param = unsafe { std::mem::zeroed() };
        p.private_data = private.as_ptr().cast();
        p.private_data_len = private.len() as u8;
        p.initiator_depth = 1;
        p.retry_count = 3;
        p.rnr_retry_count = 7;
        // SAFETY: valid id with a QP; private data is copied.
        if unsafe { rdma_connect(id.as_ptr(), &mut p) } != 0 {
            return Err(os_err("rdma_connect").into());
        }
        let ev = c
            .next_event(Duration::from_secs(10))
            .ok_or(ProbeError::Timeout("the server's answer"))?;
        // SAFETY: a valid event until acked below.
        let e = unsafe { &*ev };
        let result = match e.event {
            rdma_cm_event_type::RDMA_CM_EVENT_ESTABLISHED => {
                // SAFETY: `param.conn` is active for ESTABLISHED.
                let data = unsafe {
                    std::slice::from_raw_parts(
                        e.param.conn.private_data as *const u8,
                        usize::from(e.param.conn.private_data_len),
                    )
                };
                AcceptReply::decode(data).map_err(ProbeError::BadAccept)
            }
            rdma_cm_event_type::RDMA_CM_EVENT_REJECTED => {
                Err(ProbeError::Rejected(reject_reason(e)))
            }
            other => Err(ProbeError::Unexpected(event_name(other))),
        };
        // SAFETY: acking the event once.
        unsafe { rdma_ack_cm_event(ev) };
        c.region = result?;
        Ok(c)
    }

    /// Ends the session of client `client_id` (whose `queue_count` queues
    /// include this one, connected from `from`), as the kernel client does
    /// on unload: a connect request from the same address with the close
    /// flag and the session secret of this connection's accept. The server
    /// disconnects the client's queues and frees its region instead of
    /// keeping it for a reconnect. A session already gone (the server frees
    /// at once without a linger time) is fine too.
    pub fn close_session(
        &self,
        from: Option<Ipv4Addr>,
        server: SocketAddrV4,
        client_id: u64,
        queue_count: u16,
    ) -> Result<(), ProbeError> {
        let req = protocol::ConnectRequest {
            version: protocol::VERSION,
            reconnect: false,
            close: true,
            secret: self.region.secret,
            queue: 0,
            queue_count,
            client_id,
        };
        match Self::connect_from(from, server, &req.encode()) {
            Err(ProbeError::Rejected(why))
                if why == Status::SessionClosed.reason() || why == Status::SessionGone.reason() =>
            {
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => Err(ProbeError::Unexpected(
                "an accept of a close request".into(),
            )),
        }
    }

    fn setup_qp(&mut self) -> Result<(), ProbeError> {
        // SAFETY: the id has a device after address resolution.
        let ctx = unsafe { self.id.as_ref().verbs };
        // SAFETY: valid device context.
        self.pd = unsafe { ibv_alloc_pd(ctx) };
        // SAFETY: valid device context.
        self.cq = unsafe { ibv_create_cq(ctx, 16, ptr::null_mut(), ptr::null_mut(), 0) };
        if self.pd.is_null() || self.cq.is_null() {
            return Err(os_err("ibv_alloc_pd/ibv_create_cq").into());
        }
        let access = ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0 as i32;
        // SAFETY: the buffer is boxed and outlives the MR.
        self.mr = unsafe { ibv_reg_mr(self.pd, self.buf.as_mut_ptr().cast(), 4096, access) };
        if self.mr.is_null() {
            return Err(os_err("ibv_reg_mr").into());
        }
        // SAFETY: zeroed init attr is valid; fields set below.
        let mut attr: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        attr.send_cq = self.cq;
        attr.recv_cq = self.cq;
        attr.qp_type = ibv_qp_type::IBV_QPT_RC;
        attr.cap.max_send_wr = 4;
        attr.cap.max_recv_wr = 1;
        attr.cap.max_send_sge = 1;
        attr.cap.max_recv_sge = 1;
        // SAFETY: valid id, PD and CQ.
        if unsafe { rdma_create_qp(self.id.as_ptr(), self.pd, &mut attr) } != 0 {
            return Err(os_err("rdma_create_qp").into());
        }
        Ok(())
    }

    fn next_event(&self, timeout: Duration) -> Option<*mut rdma_cm_event> {
        // SAFETY: valid channel.
        let fd = unsafe { self.channel.as_ref().fd };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) } <= 0 {
            return None;
        }
        let mut ev = ptr::null_mut();
        // SAFETY: valid channel; the fd is readable so this does not block.
        (unsafe { rdma_get_cm_event(self.channel.as_ptr(), &mut ev) } == 0).then_some(ev)
    }

    fn expect(&self, want: rdma_cm_event_type::Type, what: &'static str) -> Result<(), ProbeError> {
        let ev = self
            .next_event(Duration::from_secs(10))
            .ok_or(ProbeError::Timeout(what))?;
        // SAFETY: valid until acked.
        let got = unsafe { (*ev).event };
        // SAFETY: acking once.
        unsafe { rdma_ack_cm_event(ev) };
        if got == want {
            Ok(())
        } else {
            Err(ProbeError::Unexpected(event_name(got)))
        }
    }

    /// Whether the server disconnected this queue (a DISCONNECTED event
    /// arrives within `timeout`).
    pub fn disconnected_within(&self, timeout: Duration) -> bool {
        let Some(ev) = self.next_event(timeout) else {
            return false;
        };
        // SAFETY: valid until acked.
        let got = unsafe { (*ev).event };
        // SAFETY: acking once.
        unsafe { rdma_ack_cm_event(ev) };
        got == rdma_cm_event_type::RDMA_CM_EVENT_DISCONNECTED
    }

    pub fn buffer(&mut self) -> &mut [u8; 4096] {
        &mut self.buf
    }

    /// RDMA WRITE (or READ) of the local page at remote `addr` with `rkey`.
    /// Returns the work completion status (0 is success).
    pub fn transfer(&mut self, write: bool, addr: u64, rkey: u32) -> Result<u32, ProbeError> {
        // SAFETY: valid MR.
        let lkey = unsafe { (*self.mr).lkey };
        let mut sge = ibv_sge {
            addr: self.buf.as_ptr() as u64,
            length: 4096,
            lkey,
        };
        // SAFETY: zeroed WR is valid; fields set below.
        let mut wr: ibv_send_wr = unsafe { std::mem::zeroed() };
        wr.sg_list = &mut sge;
        wr.num_sge = 1;
        wr.opcode = if write {
            ibv_wr_opcode::IBV_WR_RDMA_WRITE
        } else {
            ibv_wr_opcode::IBV_WR_RDMA_READ
        };
        wr.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
        wr.wr.rdma.remote_addr = addr;
        wr.wr.rdma.rkey = rkey;
        let mut bad = ptr::null_mut();
        // SAFETY: valid connected QP; the WR is copied.
        let rc = unsafe { ibv_post_send(self.id.as_ref().qp, &mut wr, &mut bad) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc).into());
        }
        for _ in 0..10_000 {
            // SAFETY: zeroed wc is valid to fill.
            let mut wc: ibv_wc = unsafe { std::mem::zeroed() };
            // SAFETY: valid CQ.
            if unsafe { ibv_poll_cq(self.cq, 1, &mut wc) } > 0 {
                return Ok(wc.status);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(ProbeError::Timeout("an RDMA completion"))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: resources are valid or null and released once, QP before
        // the PD it lives in, the id before its channel.
        unsafe {
            rdma_disconnect(self.id.as_ptr());
            if !self.id.as_ref().qp.is_null() {
                rdma_destroy_qp(self.id.as_ptr());
            }
            if !self.mr.is_null() {
                ibv_dereg_mr(self.mr);
            }
            if !self.cq.is_null() {
                ibv_destroy_cq(self.cq);
            }
            if !self.pd.is_null() {
                ibv_dealloc_pd(self.pd);
            }
            rdma_destroy_id(self.id.as_ptr());
            rdma_destroy_event_channel(self.channel.as_ptr());
        }
    }
}

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn event_name(t: rdma_cm_event_type::Type) -> String {
    // SAFETY: returns a static string.
    unsafe { std::ffi::CStr::from_ptr(rdma_event_str(t)) }
        .to_string_lossy()
        .into_owned()
}
