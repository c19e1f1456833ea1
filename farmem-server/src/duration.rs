//! Durations on the command line ("60", "60s", "2m").

use std::str::FromStr;
use std::time::Duration;

/// Whole seconds, at least 1 and at most a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub Duration);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration from 1s to 24h (use seconds, or a number with an s, m or h suffix)"
)]
pub struct SecondsError(String);

impl FromStr for Seconds {
    type Err = SecondsError;

    fn from_str(s: &str) -> Result<Self, SecondsError> {
        match parse_secs(s) {
            Some(secs) if secs >= 1 => Ok(Seconds(Duration::from_secs(secs))),
            _ => Err(SecondsError(s.into())),
        }
    }
}

/// Whole seconds from 0 to a day, where 0 turns something off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl Interval {
    /// The interval, or None when it is 0 (off).
    pub fn get(self) -> Option<Duration> {
        (!self.0.is_zero()).then_some(self.0)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration from 0 (off) to 24h (use seconds, or a number with an s, m or h suffix)"
)]
pub struct IntervalError(String);

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, IntervalError> {
        parse_secs(s)
            .map(|secs| Interval(Duration::from_secs(secs)))
            .ok_or_else(|| IntervalError(s.into()))
    }
}

/// Seconds in "N", "Ns", "Nm" or "Nh", at most a day.
fn parse_secs(s: &str) -> Option<u64> {
    let t = s.trim();
    let (num, unit) = match t.as_bytes().last() {
        Some(b's') => (&t[..t.len() - 1], 1),
        Some(b'm') => (&t[..t.len() - 1], 60),
        Some(b'h') => (&t[..t.len() - 1], 3600),
        _ => (t, 1),
    };
    // u64's parser takes a leading '+'; a duration has digits only.
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = num.parse::<u64>().ok()?.checked_mul(unit)?;
    (secs <= 86_400).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!("60".parse(), Ok(Seconds(Duration::from_secs(60))));
        assert_eq!("15s".parse(), Ok(Seconds(Duration::from_secs(15))));
        assert_eq!("2m".parse(), Ok(Seconds(Duration::from_secs(120))));
        assert_eq!("1h".parse(), Ok(Seconds(Duration::from_secs(3600))));
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "0",
            "s",
            "-1",
            "1.5s",
            "25h",
            "99999999999999999999",
            "5d",
            "ms",
        ] {
            assert!(s.parse::<Seconds>().is_err(), "{s}");
        }
    }

    #[test]
    fn intervals_may_be_off() {
        assert_eq!("0".parse::<Interval>().map(Interval::get), Ok(None));
        assert_eq!("0s".parse::<Interval>().map(Interval::get), Ok(None));
        assert_eq!(
            "5s".parse::<Interval>().map(Interval::get),
            Ok(Some(Duration::from_secs(5)))
        );
        assert_eq!(
            "2m".parse::<Interval>().map(Interval::get),
            Ok(Some(Duration::from_secs(120)))
        );
        for s in ["", "s", "-1", "+5", "1.5s", "25h", "5d", "off"] {
            assert!(s.parse::<Interval>().is_err(), "{s}");
        }
    }
}
