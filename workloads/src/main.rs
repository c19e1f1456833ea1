//! fastswap-workload: runs inside a testbed guest.
//!
//! verify: fill memory with a deterministic pattern and check every byte
//!     after it has been through swap (optionally in several processes, and
//!     optionally pausing between fill and check).
//! faultlat: fill a region, evict it with MADV_PAGEOUT, touch every page in
//!     random order, and print the swap-in fault latency as JSON.

mod pattern;
mod region;

use region::{Region, PAGE};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Error {
    Usage(String),
    Io(&'static str, std::io::Error),
    Corrupt { offset: usize, words: usize },
    Child(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "usage: {m}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::Corrupt { offset, words } => {
                write!(
                    f,
                    "data mismatch: first at byte {offset}, {words} words differ"
                )
            }
            Error::Child(m) => write!(f, "worker failed: {m}"),
        }
    }
}

const USAGE: &str =
    "fastswap-workload verify --size SIZE [--procs N] [--seed S] [--passes P] [--pause-file PATH]
       fastswap-workload faultlat --size SIZE [--backend NAME] [--reclaim CGROUP/memory.reclaim]";

struct Args {
    size: usize,
    procs: usize,
    seed: u64,
    passes: usize,
    pause: Option<PathBuf>,
    backend: String,
    reclaim: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<usize, Error> {
    let (n, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<usize>()
        .ok()
        .and_then(|v| v.checked_mul(mult))
        .filter(|&v| v >= PAGE)
        .ok_or_else(|| Error::Usage(format!("bad size {s:?}")))
}

fn parse_args(rest: &[String]) -> Result<Args, Error> {
    let mut a = Args {
        size: 0,
        procs: 1,
        seed: 1,
        passes: 1,
        pause: None,
        backend: "unknown".into(),
        reclaim: None,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))
        };
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| Error::Usage(format!("bad number {v:?}")))
        };
        match flag.as_str() {
            "--size" => a.size = parse_size(&val()?)?,
            "--procs" => a.procs = num(val()?)? as usize,
            "--seed" => a.seed = num(val()?)?,
            "--passes" => a.passes = num(val()?)? as usize,
            "--pause-file" => a.pause = Some(PathBuf::from(val()?)),
            "--backend" => a.backend = val()?,
            "--reclaim" => a.reclaim = Some(PathBuf::from(val()?)),
            other => return Err(Error::Usage(format!("unknown flag {other}"))),
        }
    }
    if a.size == 0 || a.procs == 0 || a.passes == 0 {
        return Err(Error::Usage(USAGE.into()));
    }
    Ok(a)
}

/// Fill, (pause,) verify; each pass rewrites with a new seed so stale pages
/// from an earlier pass are caught too.
fn verify_one(a: &Args) -> Result<(), Error> {
    let mut r = Region::new(a.size).map_err(|e| Error::Io("mmap", e))?;
    for pass in 0..a.passes as u64 {
        let seed = a.seed.wrapping_mul(1000).wrapping_add(pass);
        pattern::fill(r.words_mut(), seed);
        if let Some(p) = &a.pause {
            wait_for(p)?;
        }
        if let Some((first, words)) = pattern::check(r.words(), seed) {
            return Err(Error::Corrupt {
                offset: first * 8,
                words,
            });
        }
    }
    Ok(())
}

/// Announces `<path>.ready` and waits until `path` exists.
fn wait_for(path: &Path) -> Result<(), Error> {
    let mut ready = path.as_os_str().to_owned();
    ready.push(format!(".ready.{}", std::process::id()));
    std::fs::write(&ready, b"").map_err(|e| Error::Io("ready file", e))?;
    while !path.exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn verify(a: &Args) -> Result<(), Error> {
    let start = Instant::now();
    if a.procs == 1 {
        verify_one(a)?;
    } else {
        let exe = std::env::current_exe().map_err(|e| Error::Io("current_exe", e))?;
        let per = (a.size / a.procs).max(PAGE);
        let mut children = Vec::new();
        for i in 0..a.procs {
            let mut c = Command::new(&exe);
            c.args([
                "verify",
                "--size",
                &per.to_string(),
                "--passes",
                &a.passes.to_string(),
            ]);
            c.args(["--seed", &(a.seed + 1 + i as u64).to_string()]);
            if let Some(p) = &a.pause {
                c.arg("--pause-file").arg(p);
            }
            children.push(c.spawn().map_err(|e| Error::Io("spawn", e))?);
        }
        let mut failed = Vec::new();
        for (i, mut c) in children.into_iter().enumerate() {
            match c.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push(format!("worker {i}: {s}")),
                Err(e) => failed.push(format!("worker {i}: {e}")),
            }
        }
        if !failed.is_empty() {
            return Err(Error::Child(failed.join(", ")));
        }
    }
    println!(
        "verify: {} MiB in {} process(es), {} pass(es): all bytes match ({:.1}s)",
        a.size >> 20,
        a.procs,
        a.passes,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn faultlat(a: &Args) -> Result<(), Error> {
    let mut r = Region::new(a.size).map_err(|e| Error::Io("mmap", e))?;
    pattern::fill(r.words_mut(), a.seed);
    r.page_out()
        .map_err(|e| Error::Io("madvise(MADV_PAGEOUT)", e))?;
    // A block device writes back asynchronously, so its pages linger in the
    // swap cache; proactive reclaim of our cgroup frees them once written,
    // so every backend is measured on real swap-ins (see major_faults).
    if let Some(reclaim) = &a.reclaim {
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(200));
            // EAGAIN just means less was reclaimable than asked for.
            let _ = std::fs::write(reclaim, format!("{}", a.size * 2));
        }
    }
    // A fixed shuffle of the pages, so readahead rarely hides the fault.
    let n = r.pages();
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = a.seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let majors_before = region::major_faults();
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for &p in &order {
        let t = Instant::now();
        std::hint::black_box(r.touch(p));
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = start.elapsed().as_secs_f64();
    let majors = region::major_faults() - majors_before;
    if let Some((first, words)) = pattern::check(r.words(), a.seed) {
        return Err(Error::Corrupt {
            offset: first * 8,
            words,
        });
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "{{\"backend\":\"{}\",\"pages\":{},\"major_faults\":{},\"swapin_p50_us\":{:.2},\"swapin_p99_us\":{:.2},\"faults_per_s\":{:.0}}}",
        a.backend,
        n,
        majors,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        n as f64 / total
    );
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("verify") => parse_args(&argv[2..]).and_then(|a| verify(&a)),
        Some("faultlat") => parse_args(&argv[2..]).and_then(|a| faultlat(&a)),
        _ => Err(Error::Usage(USAGE.into())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fastswap-workload: {e}");
            ExitCode::FAILURE
        }
    }
}
