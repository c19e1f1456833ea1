//! Fastswap's page counters since boot, one sysfs file each. Generic so
//! that their rates have the same fields and names.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counters<T> {
    pub stores: T,
    pub loads: T,
    /// The part of `loads` read asynchronously (readahead).
    pub async_loads: T,
    /// Pages that went to the swap device instead.
    pub failed_stores: T,
    pub failed_loads: T,
    pub invalidates: T,
}

/// The sysfs file (and JSON key) of each counter, in field order, with
/// the label the table shows.
pub const NAMES: [(&str, &str); 6] = [
    ("stores", "stores"),
    ("loads", "loads"),
    ("async_loads", "async loads"),
    ("failed_stores", "failed stores"),
    ("failed_loads", "failed loads"),
    ("invalidates", "invalidates"),
];

impl<T> Counters<T> {
    /// Each field from `f(its file name)`.
    pub fn try_from_fn<E>(mut f: impl FnMut(&'static str) -> Result<T, E>) -> Result<Self, E> {
        Ok(Counters {
            stores: f(NAMES[0].0)?,
            loads: f(NAMES[1].0)?,
            async_loads: f(NAMES[2].0)?,
            failed_stores: f(NAMES[3].0)?,
            failed_loads: f(NAMES[4].0)?,
            invalidates: f(NAMES[5].0)?,
        })
    }

    /// The fields in the order of [`NAMES`].
    pub fn values(&self) -> [&T; 6] {
        [
            &self.stores,
            &self.loads,
            &self.async_loads,
            &self.failed_stores,
            &self.failed_loads,
            &self.invalidates,
        ]
    }

    /// Field by field, `f(self.x, other.x)`.
    pub fn zip_with<U, V>(
        &self,
        other: &Counters<U>,
        mut f: impl FnMut(&T, &U) -> V,
    ) -> Counters<V> {
        Counters {
            stores: f(&self.stores, &other.stores),
            loads: f(&self.loads, &other.loads),
            async_loads: f(&self.async_loads, &other.async_loads),
            failed_stores: f(&self.failed_stores, &other.failed_stores),
            failed_loads: f(&self.failed_loads, &other.failed_loads),
            invalidates: f(&self.invalidates, &other.invalidates),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_fields() {
        let c =
            Counters::try_from_fn(|name| NAMES.iter().position(|(n, _)| *n == name).ok_or(name))
                .expect("every name known");
        let got: Vec<usize> = c.values().into_iter().copied().collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
        let json = serde_json::to_value(c).expect("serializes");
        for (i, (name, _)) in NAMES.iter().enumerate() {
            assert_eq!(json[name], i, "{name}");
        }
    }
}
