//! fastswap-workload: runs inside a testbed guest.
//!
//! verify: fill memory with a deterministic pattern and check every byte
//!     after it has been through swap (optionally in several processes, and
//!     optionally pausing between fill and check).
//! faultlat: fill a region, evict it, touch every page (random or
//!     sequential order, one or more threads), and print the swap-out rate
//!     and the swap-in fault latency distribution as JSON.
//! rewrite: pages flip between compressible and incompressible data from
//!     pass to pass, each read back and checked before it is rewritten
//!     (catches a stale copy left in zswap or the backend).
//! forkcheck: fill, fork, and check copy-on-write over swapped pages from
//!     both sides.
//! app: one of the benchmark applications (quicksort, kvstore, bfs); prints
//!     the run time of its compute phase as JSON after checking its result.

mod bfs;
mod faultlat;
mod forkcheck;
mod json;
mod kvstore;
mod limit;
mod pattern;
mod region;
mod rewrite;
mod rng;
mod sort;

use json::Tags;
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
    Wrong(String),
    Json(serde_json::Error),
    Setup(String),
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
            Error::Wrong(m) => write!(f, "wrong result: {m}"),
            Error::Json(e) => write!(f, "writing the JSON line: {e}"),
            Error::Setup(m) => write!(f, "{m}"),
        }
    }
}

const USAGE: &str =
    "fastswap-workload verify --size SIZE [--procs N] [--seed S] [--passes P] [--pause-file PATH]
       fastswap-workload rewrite --size SIZE [--passes P] [--seed S]
       fastswap-workload forkcheck --size SIZE [--seed S]
       fastswap-workload faultlat --size SIZE [--order random|seq] [--threads N] [--reclaim CGROUP/memory.reclaim] [--tag K=V]...
       fastswap-workload app quicksort|kvstore|bfs --size SIZE [--ops N] [--seed S] [--limit CGROUP:BYTES] [--tag K=V]...
  --limit runs the compute phase with the cgroup's memory.high at BYTES.
  --tag adds a string field to the JSON line (for example backend=zram); K is
  a name of letters, digits, '-', '_' or '.', and not one of the line's own fields.";

struct Args {
    size: usize,
    procs: usize,
    seed: u64,
    passes: usize,
    pause: Option<PathBuf>,
    reclaim: Option<PathBuf>,
    sequential: bool,
    threads: usize,
    ops: Option<u64>,
    limit: Option<limit::Limit>,
    tags: Tags,
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
        reclaim: None,
        sequential: false,
        threads: 1,
        ops: None,
        limit: None,
        tags: Tags::new(),
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
            "--reclaim" => a.reclaim = Some(PathBuf::from(val()?)),
            "--order" => {
                a.sequential = match val()?.as_str() {
                    "seq" => true,
                    "random" => false,
                    o => return Err(Error::Usage(format!("bad order {o:?}"))),
                }
            }
            "--threads" => a.threads = num(val()?)? as usize,
            "--ops" => a.ops = Some(num(val()?)?),
            "--limit" => {
                let v = val()?;
                a.limit =
                    Some(limit::Limit::parse(&v).ok_or_else(|| {
                        Error::Usage(format!("bad limit {v:?} (want CGROUP:BYTES)"))
                    })?);
            }
            "--tag" => {
                let t = val()?;
                let (k, v) = t
                    .split_once('=')
                    .filter(|(k, _)| json::valid_tag_name(k))
                    .ok_or_else(|| Error::Usage(format!("bad tag {t:?}")))?;
                if a.tags.insert(k.into(), v.into()).is_some() {
                    return Err(Error::Usage(format!("tag {k:?} given twice")));
                }
            }
            other => return Err(Error::Usage(format!("unknown flag {other}"))),
        }
    }
    if a.size == 0 || a.procs == 0 || a.passes == 0 || a.threads == 0 {
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

/// Rewrite passes (see rewrite.rs); fails on any page that does not hold the
/// previous pass's data, and says how many hold an older pass's.
fn rewrite(a: &Args) -> Result<(), Error> {
    let start = Instant::now();
    let mut r = Region::new(a.size).map_err(|e| Error::Io("mmap", e))?;
    let passes = a.passes.max(2) as u64;
    let report = |pass: u64, t: rewrite::Tally| -> Result<(), Error> {
        if t.is_clean() {
            return Ok(());
        }
        Err(Error::Wrong(format!(
            "pass {pass}: {} pages hold an older pass's data, {} other pages are wrong; first: page {:?}",
            t.stale, t.garbage, t.first
        )))
    };
    for pass in 0..passes {
        report(pass, rewrite::pass(r.words_mut(), a.seed, pass))?;
    }
    report(passes, rewrite::check_all(r.words(), a.seed, passes - 1))?;
    println!(
        "rewrite: {} MiB, {passes} passes: every page read back the previous pass's data ({:.1}s)",
        a.size >> 20,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fill, fork, and check copy-on-write from both sides.
fn forkcheck(a: &Args) -> Result<(), Error> {
    let mut r = Region::new(a.size).map_err(|e| Error::Io("mmap", e))?;
    pattern::fill(r.words_mut(), a.seed);
    forkcheck::run(&mut r, a.seed).map_err(Error::Wrong)?;
    println!(
        "forkcheck: {} MiB shared copy-on-write: parent and child each read their own data",
        a.size >> 20
    );
    Ok(())
}

fn faultlat(a: &Args) -> Result<(), Error> {
    let cgroup = a.reclaim.as_deref().and_then(Path::parent);
    let n = a.size.div_ceil(PAGE);
    let order = faultlat::order(n, a.seed, a.sequential);
    let base = faultlat::base_usage(cgroup);
    let mut r = Region::new(a.size).map_err(|e| Error::Io("mmap", e))?;
    pattern::fill(r.words_mut(), a.seed);
    let out_secs =
        faultlat::swap_out(&r, cgroup, base).map_err(|e| Error::Io("madvise(MADV_PAGEOUT)", e))?;
    let majors_before = region::major_faults();
    let (lat, secs) = faultlat::touch_all(&r, &order, a.threads);
    let majors = region::major_faults() - majors_before;
    if let Some((first, words)) = pattern::check(r.words(), a.seed) {
        return Err(Error::Corrupt {
            offset: first * 8,
            words,
        });
    }
    let q = |p| faultlat::quantile(&lat, p);
    let cdf: Vec<f64> = faultlat::cdf_points().into_iter().map(q).collect();
    print_json(&json::Latency {
        tags: &a.tags,
        order: if a.sequential { "seq" } else { "random" },
        threads: a.threads,
        pages: n,
        major_faults: majors,
        swapin_p50_us: q(0.50),
        swapin_p99_us: q(0.99),
        swapin_p999_us: q(0.999),
        faults_per_s: n as f64 / secs,
        swapout_pages_per_s: n as f64 / out_secs,
        cdf_us: cdf,
    })
}

fn print_json(record: &impl serde::Serialize) -> Result<(), Error> {
    let line = serde_json::to_string(record).map_err(Error::Json)?;
    println!("{line}");
    Ok(())
}

/// Runs `compute` under the local-memory limit (if any); returns its
/// result, its run time in seconds and the major faults it took.
fn limited<T>(a: &Args, compute: impl FnOnce() -> T) -> Result<(T, f64, u64), Error> {
    if let Some(l) = &a.limit {
        l.apply()
            .map_err(|e| Error::Io("setting the memory limit", e))?;
    }
    let majors = region::major_faults();
    let start = Instant::now();
    let out = compute();
    let secs = start.elapsed().as_secs_f64();
    let majors = region::major_faults() - majors;
    if let Some(l) = &a.limit {
        l.lift()
            .map_err(|e| Error::Io("lifting the memory limit", e))?;
    }
    Ok((out, secs, majors))
}

/// Runs one application: prepare, compute (timed, under the limit), check.
fn app(name: &str, a: &Args) -> Result<(), Error> {
    let (secs, majors, checked) = match name {
        "quicksort" => {
            let (mut v, sig) = sort::prepare(a.size / 8, a.seed);
            let ((), secs, majors) = limited(a, || sort::run(&mut v))?;
            let o = sort::check(&v, sig).map_err(Error::Wrong)?;
            (secs, majors, json::Checked::Elements(o.elements as u64))
        }
        "kvstore" => {
            let s = kvstore::Store::prepare(a.size, a.seed);
            let q = s
                .queries(a.ops.unwrap_or(s.items()), a.seed)
                .map_err(Error::Setup)?;
            let (o, secs, majors) = limited(a, || s.run(&q))?;
            let o = o.map_err(Error::Wrong)?;
            (secs, majors, json::Checked::Lookups(o.lookups))
        }
        "bfs" => {
            const DEGREE: usize = 16;
            let g = bfs::Graph::prepare(a.size / bfs::bytes_per_vertex(DEGREE), DEGREE, a.seed);
            let (t, secs, majors) = limited(a, || g.bfs(0))?;
            let o = g.check(0, &t).map_err(Error::Wrong)?;
            (secs, majors, json::Checked::Reached(o.reached as u64))
        }
        other => return Err(Error::Usage(format!("unknown app {other:?}\n{USAGE}"))),
    };
    print_json(&json::App {
        tags: &a.tags,
        workload: name,
        size_mib: (a.size >> 20) as u64,
        seconds: secs,
        checked,
        major_faults: majors,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("verify") => parse_args(&argv[2..]).and_then(|a| verify(&a)),
        Some("rewrite") => parse_args(&argv[2..]).and_then(|a| rewrite(&a)),
        Some("forkcheck") => parse_args(&argv[2..]).and_then(|a| forkcheck(&a)),
        Some("faultlat") => parse_args(&argv[2..]).and_then(|a| faultlat(&a)),
        Some("app") => match argv.get(2) {
            Some(name) => parse_args(&argv[3..]).and_then(|a| app(name, &a)),
            None => Err(Error::Usage(USAGE.into())),
        },
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
