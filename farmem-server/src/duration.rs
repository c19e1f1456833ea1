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
        let err = || SecondsError(s.into());
        let t = s.trim();
        let (num, unit) = match t.as_bytes().last() {
            Some(b's') => (&t[..t.len() - 1], 1),
            Some(b'm') => (&t[..t.len() - 1], 60),
            Some(b'h') => (&t[..t.len() - 1], 3600),
            _ => (t, 1),
        };
        let n: u64 = num.parse().map_err(|_| err())?;
        let secs = n.checked_mul(unit).ok_or_else(err)?;
        if !(1..=86_400).contains(&secs) {
            return Err(err());
        }
        Ok(Seconds(Duration::from_secs(secs)))
    }
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
}
