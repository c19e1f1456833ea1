//! Where a connection came from: the address the RDMA CM reports for the
//! peer and its GID. A client's later queues must come from the same peer
//! as its first.

use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The peer's IP address (from the CM's connection data), when the
    /// address family is IPv4 or IPv6.
    pub ip: Option<IpAddr>,
    /// The peer's GID (on RoCE derived from its IP address; on InfiniBand
    /// the port GID of the connect request's path).
    pub gid: [u8; 16],
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(ip) => write!(f, "{ip}"),
            None => {
                write!(f, "gid ")?;
                for (i, pair) in self.gid.chunks(2).enumerate() {
                    if i > 0 {
                        write!(f, ":")?;
                    }
                    write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn shows_the_address() {
        let p = Peer {
            ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
            gid: [0; 16],
        };
        assert_eq!(p.to_string(), "192.0.2.2");
        let p = Peer {
            ip: None,
            gid: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        };
        assert_eq!(p.to_string(), "gid fe80:0000:0000:0000:0000:0000:0000:0001");
    }
}
