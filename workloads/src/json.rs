//! The JSON lines the workloads print, one object per run, as the bench
//! collects them (tests/scenarios/bench.sh prefixes them with "BENCH " and
//! scripts/bench_report.py reads them): serde records with the `--tag K=V`
//! pairs first, as string fields.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// `--tag` pairs, added to the record as string fields.
pub type Tags = BTreeMap<String, String>;

/// The field names of the records below, which a tag may not take.
pub const FIELDS: &[&str] = &[
    "order",
    "threads",
    "pages",
    "major_faults",
    "swapin_p50_us",
    "swapin_p99_us",
    "swapin_p999_us",
    "faults_per_s",
    "swapout_pages_per_s",
    "cdf_us",
    "workload",
    "size_mib",
    "seconds",
    "elements",
    "lookups",
    "reached",
];

/// A tag's name becomes a field name: a plain identifier, not one of the
/// record's own fields. (Values may be any text; serde_json escapes them.)
pub fn valid_tag_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !FIELDS.contains(&s)
}

/// Milliunit precision, as the harness has always printed; JSON has no NaN
/// or infinity, so those are -1.
fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        -1.0
    }
}

fn rounded<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round3(*v))
}

fn rounded_all<S: Serializer>(vs: &[f64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(vs.iter().map(|&v| round3(v)))
}

/// One `faultlat` run: swap-out rate and swap-in fault latency.
#[derive(Serialize)]
pub struct Latency<'a> {
    #[serde(flatten)]
    pub tags: &'a Tags,
    /// "random" or "seq"
    pub order: &'static str,
    pub threads: usize,
    pub pages: usize,
    pub major_faults: u64,
    #[serde(serialize_with = "rounded")]
    pub swapin_p50_us: f64,
    #[serde(serialize_with = "rounded")]
    pub swapin_p99_us: f64,
    #[serde(serialize_with = "rounded")]
    pub swapin_p999_us: f64,
    #[serde(serialize_with = "rounded")]
    pub faults_per_s: f64,
    #[serde(serialize_with = "rounded")]
    pub swapout_pages_per_s: f64,
    /// The latency at each of faultlat::cdf_points()
    #[serde(serialize_with = "rounded_all")]
    pub cdf_us: Vec<f64>,
}

/// What an application checked, under a name of its own.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Checked {
    Elements(u64),
    Lookups(u64),
    Reached(u64),
}

/// One `app` run: the compute phase's time.
#[derive(Serialize)]
pub struct App<'a> {
    #[serde(flatten)]
    pub tags: &'a Tags,
    pub workload: &'a str,
    pub size_mib: u64,
    #[serde(serialize_with = "rounded")]
    pub seconds: f64,
    #[serde(flatten)]
    pub checked: Checked,
    pub major_faults: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn latency(t: &Tags) -> Latency<'_> {
        Latency {
            tags: t,
            order: "random",
            threads: 2,
            pages: 1024,
            major_faults: 1000,
            swapin_p50_us: 12.34567,
            swapin_p99_us: 100.0,
            swapin_p999_us: 250.5,
            faults_per_s: f64::INFINITY,
            swapout_pages_per_s: 4000.0004,
            cdf_us: vec![1.0, 2.5, 7.12345],
        }
    }

    fn app(t: &Tags) -> App<'_> {
        App {
            tags: t,
            workload: "kvstore",
            size_mib: 8,
            seconds: 0.0114,
            checked: Checked::Lookups(98304),
            major_faults: 0,
        }
    }

    #[test]
    fn latency_line() {
        let t = tags(&[("round", "1"), ("backend", "zram")]);
        let line = serde_json::to_string(&latency(&t)).expect("serializes");
        assert_eq!(
            line,
            r#"{"backend":"zram","round":"1","order":"random","threads":2,"pages":1024,"major_faults":1000,"swapin_p50_us":12.346,"swapin_p99_us":100.0,"swapin_p999_us":250.5,"faults_per_s":-1.0,"swapout_pages_per_s":4000.0,"cdf_us":[1.0,2.5,7.123]}"#
        );
    }

    #[test]
    fn app_line() {
        let t = tags(&[("backend", "none"), ("local_ratio", "0.5")]);
        let line = serde_json::to_string(&app(&t)).expect("serializes");
        assert_eq!(
            line,
            r#"{"backend":"none","local_ratio":"0.5","workload":"kvstore","size_mib":8,"seconds":0.011,"lookups":98304,"major_faults":0}"#
        );
    }

    #[test]
    fn values_are_escaped() {
        let t = tags(&[("note", "a \"quoted\"\\ value\n")]);
        let line = serde_json::to_string(&app(&t)).expect("serializes");
        let back: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back["note"], "a \"quoted\"\\ value\n");
    }

    /// FIELDS lists exactly the records' own fields.
    #[test]
    fn fields_are_the_records_fields() {
        let none = Tags::new();
        let mut seen: Vec<String> = Vec::new();
        let mut keys = |v: Value| {
            if let Value::Object(m) = v {
                seen.extend(m.keys().cloned());
            }
        };
        keys(serde_json::to_value(latency(&none)).expect("serializes"));
        for checked in [
            Checked::Elements(1),
            Checked::Lookups(1),
            Checked::Reached(1),
        ] {
            keys(
                serde_json::to_value(App {
                    checked,
                    ..app(&none)
                })
                .expect("serializes"),
            );
        }
        seen.sort();
        seen.dedup();
        let mut fields: Vec<String> = FIELDS.iter().map(|s| s.to_string()).collect();
        fields.sort();
        assert_eq!(seen, fields);
    }

    #[test]
    fn tag_names() {
        assert!(valid_tag_name("backend"));
        assert!(valid_tag_name("local_ratio"));
        assert!(valid_tag_name("0.5"));
        assert!(!valid_tag_name("a\"b"));
        assert!(!valid_tag_name(""));
        assert!(!valid_tag_name("seconds"), "a record field");
    }
}
