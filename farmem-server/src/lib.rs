//! farmem-server: the far memory node of Fastswap.
//!
//! Clients (fastswap_rdma.ko) connect one RDMA CM queue at a time; the first
//! queue of a client gets it a registered memory region in its own
//! protection domain, and the accept tells it where (address, rkey, size).
//! The client then reads and writes pages with one-sided RDMA.
//!
//! The server: `server` (the event loop), `registry` (which clients are
//! connected, their queues, regions and limits), `liveness` (keep-alives),
//! `verbs` (every raw librdmacm and libibverbs call). The test client
//! `farmem-probe` connects through `probe_connection`, itself built on
//! `verbs`.

pub mod budget;
pub mod duration;
pub mod exit;
pub mod liveness;
pub mod logging;
pub mod peer;
pub mod probe_connection;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod size;
pub mod system;
pub mod verbs;
