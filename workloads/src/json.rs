//! One JSON object per line, the format the bench harness collects.

use std::fmt::Write;

pub struct JsonLine(String);

/// Tags and names are plain identifiers, so they need no escaping.
pub fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl JsonLine {
    pub fn new() -> Self {
        JsonLine(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }

    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        let _ = write!(self.0, "\"{v}\"");
        self
    }

    pub fn num(mut self, k: &str, v: f64) -> Self {
        self.key(k);
        // JSON has no NaN or infinity.
        let v = if v.is_finite() { v } else { -1.0 };
        let _ = write!(self.0, "{}", (v * 1000.0).round() / 1000.0);
        self
    }

    pub fn list(mut self, k: &str, vs: &[f64]) -> Self {
        self.key(k);
        self.0.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{}", (v * 1000.0).round() / 1000.0);
        }
        self.0.push(']');
        self
    }

    pub fn tags(self, tags: &[(String, String)]) -> Self {
        tags.iter().fold(self, |j, (k, v)| j.str(k, v))
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_object() {
        let j = JsonLine::new()
            .str("backend", "zram")
            .num("p50", 1.23456)
            .list("cdf", &[1.0, 2.5])
            .tags(&[("k".into(), "v".into())])
            .finish();
        assert_eq!(j, r#"{"backend":"zram","p50":1.235,"cdf":[1,2.5],"k":"v"}"#);
    }

    #[test]
    fn tags_are_identifiers() {
        assert!(valid_tag("fastswap-rdma"));
        assert!(valid_tag("0.5"));
        assert!(!valid_tag("a\"b"));
        assert!(!valid_tag(""));
    }
}
