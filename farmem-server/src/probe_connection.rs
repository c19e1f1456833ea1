//! The probe's connection: a userspace client of farmem-server (used by
//! farmem-probe, not by the server, whose record of its clients is
//! `registry`): connect one queue with chosen private data, then read and
//! write pages of a region with one-sided RDMA.

use crate::protocol::{self, AcceptError, AcceptReply, Status};
use crate::verbs::{CmEvent, CmId, EventChannel, EventKind, LocalPage, PAGE_SIZE};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
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

/// One connected queue with a one-page local buffer.
pub struct Connection {
    // Field order is drop order, after `drop` has disconnected and
    // destroyed the QP: the page (MR, CQ, PD), the id, its channel.
    page: LocalPage,
    id: CmId,
    channel: EventChannel,
    pub region: AcceptReply,
}

/// The reason carried by a reject, or the CM's status.
fn reject_reason(ev: &CmEvent) -> String {
    match protocol::decode_reject(ev.private_data()) {
        Some(code) => match Status::from_u16(code) {
            Some(s) => s.reason().to_string(),
            None => format!("unknown reason (code {code})"),
        },
        None => format!("no fastswap reason (status {})", ev.status()),
    }
}

/// The next event on `channel` within `timeout`; None if none came (or
/// it could not be read).
fn next_event(channel: &EventChannel, timeout: Duration) -> Option<CmEvent> {
    channel.wait_event(timeout).ok().flatten()
}

/// Waits for the event `want`, the end of `what`.
fn expect(channel: &EventChannel, want: EventKind, what: &'static str) -> Result<(), ProbeError> {
    let ev = next_event(channel, Duration::from_secs(10)).ok_or(ProbeError::Timeout(what))?;
    if ev.kind() == want {
        Ok(())
    } else {
        Err(ProbeError::Unexpected(ev.name()))
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
        let channel = EventChannel::new()?;
        let id = channel.create_id()?;
        id.resolve_addr(from, server, 2000)?;
        expect(&channel, EventKind::AddrResolved, "address resolution")?;
        id.resolve_route(2000)?;
        expect(&channel, EventKind::RouteResolved, "route resolution")?;
        let device = id
            .device()
            .ok_or_else(|| io::Error::other("no RDMA device after address resolution"))?;
        let page = LocalPage::new(&device)?;
        id.create_qp_for(&page)?;
        let mut c = Connection {
            page,
            id,
            channel,
            region: AcceptReply {
                addr: 0,
                rkey: 0,
                size: 0,
                secret: 0,
            },
        };
        c.id.connect(private, 1, 3)?;
        let ev = next_event(&c.channel, Duration::from_secs(10))
            .ok_or(ProbeError::Timeout("the server's answer"))?;
        let result = match ev.kind() {
            EventKind::Established => {
                AcceptReply::decode(ev.private_data()).map_err(ProbeError::BadAccept)
            }
            EventKind::Rejected => Err(ProbeError::Rejected(reject_reason(&ev))),
            _ => Err(ProbeError::Unexpected(ev.name())),
        };
        drop(ev); // acknowledged
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

    /// Whether the server disconnected this queue (a DISCONNECTED event
    /// arrives within `timeout`).
    pub fn disconnected_within(&self, timeout: Duration) -> bool {
        next_event(&self.channel, timeout).is_some_and(|ev| ev.kind() == EventKind::Disconnected)
    }

    pub fn buffer(&mut self) -> &mut [u8; PAGE_SIZE] {
        self.page.buffer()
    }

    /// RDMA WRITE (or READ) of the local page at remote `addr` with `rkey`.
    /// Returns the work completion status (0 is success).
    pub fn transfer(&mut self, write: bool, addr: u64, rkey: u32) -> Result<u32, ProbeError> {
        self.id.post_transfer(&mut self.page, write, addr, rkey)?;
        for _ in 0..10_000 {
            if let Ok(Some(status)) = self.page.poll_status() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(ProbeError::Timeout("an RDMA completion"))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The QP goes before the PD it lives in (the page's, dropped next),
        // the id before its channel (the fields' order).
        self.id.disconnect();
        self.id.destroy_qp();
    }
}
