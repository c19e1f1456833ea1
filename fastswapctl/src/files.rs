//! One-value files (sysfs attributes, sysctls): read, strip the newline,
//! parse; every error names the file.

use crate::error::Error;
use std::path::Path;
use std::str::FromStr;

/// The file's text without its one trailing newline.
pub fn read_value(path: &Path) -> Result<String, Error> {
    let mut s = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// `value` (read from `path`) as a T; `want` says what it should be.
pub fn parse<T: FromStr>(path: &Path, value: &str, want: &'static str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        value: value.to_string(),
        want,
    })
}

/// The file as an unsigned number.
pub fn read_u64(path: &Path) -> Result<u64, Error> {
    parse(path, &read_value(path)?, "a non-negative integer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_newline_and_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("stores");
        std::fs::write(&p, "42\n").expect("write");
        assert_eq!(read_u64(&p).expect("parses"), 42);
        std::fs::write(&p, "\n").expect("write");
        assert_eq!(read_value(&p).expect("reads"), "");
        std::fs::write(&p, "4 2\n").expect("write");
        let e = read_u64(&p).expect_err("not a number");
        assert!(e.to_string().contains("stores"), "{e}");
        let e = read_u64(&dir.path().join("loads")).expect_err("missing");
        assert!(e.to_string().contains("loads"), "{e}");
    }
}
