//! farmem-probe: checks a running farmem-server from a client machine.
//!
//!   farmem-probe reject SERVER PORT KIND   send a malformed connect request
//!                                          (bad-magic, bad-version, short,
//!                                          bad-queue); succeeds if refused
//!   farmem-probe isolation SERVER PORT     two clients each write and read
//!                                          back their own region; the second
//!                                          must fail to read the first's

use farmem_server::client::{ClientError, Connection};
use farmem_server::protocol::{ConnectRequest, VERSION};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;

const WC_SUCCESS: u32 = 0;

fn request(client_id: u64) -> [u8; 24] {
    ConnectRequest {
        version: VERSION,
        queue: 0,
        queue_count: 1,
        client_id,
    }
    .encode()
}

fn reject(server: SocketAddrV4, kind: &str) -> Result<(), String> {
    let good = request(0x5eed);
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
        "bad-queue" => ConnectRequest {
            version: VERSION,
            queue: 5,
            queue_count: 2,
            client_id: 1,
        }
        .encode()
        .to_vec(),
        other => return Err(format!("unknown kind {other}")),
    };
    match Connection::connect(server, &data) {
        Ok(_) => Err(format!("{kind}: the server accepted a malformed request")),
        Err(ClientError::Rejected(why)) => {
            println!("{kind}: rejected: {why}");
            Ok(())
        }
        Err(e) => Err(format!("{kind}: expected a reject, got: {e}")),
    }
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
    println!("{name}: wrote and read back a page of its own region");
    Ok(())
}

fn isolation(server: SocketAddrV4) -> Result<(), String> {
    let mut a =
        Connection::connect(server, &request(0xa11ce)).map_err(|e| format!("client A: {e}"))?;
    let mut b =
        Connection::connect(server, &request(0xb0b)).map_err(|e| format!("client B: {e}"))?;
    println!(
        "client A region {:#x} rkey {:#x}; client B region {:#x} rkey {:#x}",
        a.region.addr, a.region.rkey, b.region.addr, b.region.rkey
    );
    own_region_round_trip(&mut a, "client A", 7)?;
    own_region_round_trip(&mut b, "client B", 99)?;
    let (addr, rkey) = (a.region.addr, a.region.rkey);
    let st = b
        .transfer(false, addr + 4096, rkey)
        .map_err(|e| e.to_string())?;
    if st == WC_SUCCESS {
        return Err("client B read client A's page with A's address and key".into());
    }
    println!("client B using client A's address and key: refused (completion status {st}, remote access error)");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let server = |i: usize| -> Result<SocketAddrV4, String> {
        let ip: Ipv4Addr = args
            .get(i)
            .and_then(|s| s.parse().ok())
            .ok_or("bad SERVER address")?;
        let port: u16 = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .ok_or("bad PORT")?;
        Ok(SocketAddrV4::new(ip, port))
    };
    let result = match args.get(1).map(String::as_str) {
        Some("reject") => server(2).and_then(|s| reject(s, args.get(4).map_or("", String::as_str))),
        Some("isolation") => server(2).and_then(isolation),
        _ => Err("usage: farmem-probe reject SERVER PORT KIND | isolation SERVER PORT".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("farmem-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
