//! Human sizes on the command line ("4G", "512M").

use std::str::FromStr;

/// A size in bytes, a whole number of 4 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("{0:?} is not a size (use a number with an optional K, M, G or T suffix)")]
    Syntax(String),
    #[error("{0:?} is too large")]
    Overflow(String),
    #[error("{0:?} must be a non-zero multiple of 4 KiB")]
    NotPages(String),
}

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, SizeError> {
        let t = s.trim();
        let (num, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
            Some('K') => (&t[..t.len() - 1], 10),
            Some('M') => (&t[..t.len() - 1], 20),
            Some('G') => (&t[..t.len() - 1], 30),
            Some('T') => (&t[..t.len() - 1], 40),
            _ => (t, 0),
        };
        let n: u64 = num.parse().map_err(|_| SizeError::Syntax(s.into()))?;
        let bytes = n
            .checked_mul(1 << shift)
            .ok_or_else(|| SizeError::Overflow(s.into()))?;
        if bytes == 0 || bytes % 4096 != 0 {
            return Err(SizeError::NotPages(s.into()));
        }
        Ok(Size(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("4G".parse(), Ok(Size(4 << 30)));
        assert_eq!("512m".parse(), Ok(Size(512 << 20)));
        assert_eq!("8192".parse(), Ok(Size(8192)));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(matches!("".parse::<Size>(), Err(SizeError::Syntax(_))));
        assert!(matches!("4X".parse::<Size>(), Err(SizeError::Syntax(_))));
        assert!(matches!("0".parse::<Size>(), Err(SizeError::NotPages(_))));
        assert!(matches!("100".parse::<Size>(), Err(SizeError::NotPages(_))));
        assert!(matches!(
            "99999999999T".parse::<Size>(),
            Err(SizeError::Overflow(_))
        ));
    }
}
