//! When Fastswap is not active: the one line that says why and what to
//! load, printed on standard error beside exit status 3.

use crate::modules::Modules;
use crate::sysfs::{Fastswap, State};

/// The note, or None when Fastswap is active.
pub fn inactive_note(f: &Fastswap, m: &Modules) -> Option<String> {
    let why = if !f.has_backend() {
        // fastswap.ko refuses to load without a backend, so it comes second.
        let then = if m.fastswap { "" } else { ", then fastswap.ko" };
        format!("no backend module is loaded: insmod fastswap_rdma.ko sip=SERVER sport=PORT cip=LOCAL_ADDR or fastswap_dram.ko size=SIZE{then}")
    } else if !f.enabled && !m.fastswap {
        format!(
            "fastswap.ko is not loaded (backend {} is registered): insmod fastswap.ko",
            f.backend
        )
    } else if !f.enabled {
        "fastswap.ko is loaded but not registered with frontswap (still loading, or it failed: see dmesg)".to_string()
    } else {
        match f.state {
            State::Active => return None,
            State::Reconnecting => {
                let to = f.server.map(|s| format!(" to {s}")).unwrap_or_default();
                format!(
                    "the connection{to} is down and being remade: new swap-outs go to the swap device and loads of pages held there wait until it is back, or until fastswap_{b}'s reconnect_timeout_s gives up (see dmesg)",
                    b = f.backend
                )
            }
            State::Lost => {
                let at = f.server.map(|s| format!(" at {s}")).unwrap_or_default();
                format!(
                    "far memory{at} was lost and new swap-outs go to the swap device: to reconnect, swapoff, rmmod fastswap fastswap_{b}, insmod fastswap_{b}.ko and fastswap.ko again, swapon",
                    b = f.backend
                )
            }
            State::None => format!("backend {} reports no state", f.backend),
            State::Unknown => format!(
                "backend {} reports a state the kernel has no name for (see dmesg)",
                f.backend
            ),
        }
    };
    Some(format!("Fastswap is not active: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;

    fn fastswap(enabled: bool, backend: &str, state: State) -> Fastswap {
        Fastswap {
            enabled,
            backend: backend.to_string(),
            state,
            server: None,
            queues: 0,
            capacity_bytes: 0,
            stored_pages: 0,
            used_bytes: 0,
            counters: Counters::default(),
        }
    }

    fn modules(fastswap: bool, backend: bool) -> Modules {
        Modules {
            fastswap,
            fastswap_rdma: false,
            fastswap_dram: backend,
        }
    }

    #[test]
    fn active_has_no_note() {
        let f = fastswap(true, "dram", State::Active);
        assert_eq!(inactive_note(&f, &modules(true, true)), None);
    }

    #[test]
    fn says_what_to_load() {
        let none = fastswap(false, "none", State::None);
        let n = inactive_note(&none, &modules(false, false)).expect("a note");
        assert!(n.contains("no backend module is loaded"), "{n}");
        assert!(
            n.contains("fastswap_rdma.ko") && n.contains("fastswap_dram.ko"),
            "{n}"
        );
        assert!(n.ends_with("then fastswap.ko"), "{n}");

        let dram = fastswap(false, "dram", State::Active);
        let n = inactive_note(&dram, &modules(false, true)).expect("a note");
        assert!(n.ends_with("insmod fastswap.ko"), "{n}");
        assert!(n.contains("backend dram is registered"), "{n}");

        let n = inactive_note(&dram, &modules(true, true)).expect("a note");
        assert!(n.contains("see dmesg"), "{n}");
    }

    #[test]
    fn lost_far_memory_names_the_server() {
        let mut f = fastswap(true, "rdma", State::Lost);
        f.server = "10.0.0.2:50000".parse().ok();
        let n = inactive_note(&f, &modules(true, false)).expect("a note");
        assert!(n.contains("far memory at 10.0.0.2:50000 was lost"), "{n}");
        assert!(n.contains("rmmod fastswap fastswap_rdma"), "{n}");
    }

    #[test]
    fn reconnecting_names_the_server_and_the_timeout() {
        let mut f = fastswap(true, "rdma", State::Reconnecting);
        f.server = "10.0.0.2:50000".parse().ok();
        let n = inactive_note(&f, &modules(true, true)).expect("a note");
        assert!(n.contains("connection to 10.0.0.2:50000 is down"), "{n}");
        assert!(n.contains("fastswap_rdma's reconnect_timeout_s"), "{n}");
    }

    #[test]
    fn unknown_state_is_not_active() {
        let f = fastswap(true, "rdma", State::Unknown);
        let n = inactive_note(&f, &modules(true, false)).expect("a note");
        assert!(n.contains("backend rdma reports a state"), "{n}");
    }
}
