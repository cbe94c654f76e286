//! Points in time, as microseconds since the Unix epoch.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with microsecond precision. On the wire it is a JSON number of seconds since
/// the Unix epoch (`1623881816.333504`), which JavaScript, Python and humans all read directly.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, as a float (exact to the microsecond until the year 2255).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub fn from_secs_f64(secs: f64) -> Self {
        Self((secs * 1e6).round() as i64)
    }

    /// Microseconds from `earlier` to `self`, never negative.
    pub fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }

    /// Epoch seconds as a decimal string, the form of funcX's `completion_t`.
    pub fn to_epoch_string(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        write!(f, "{secs}.{micros:06}")
    }
}

/// Text that is not epoch seconds as [`Timestamp::to_epoch_string`] writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampError {
    pub input: String,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a time in epoch seconds (such as 1623881816.333504)",
            self.input
        )
    }
}

impl std::error::Error for TimestampError {}

/// Reads what [`Timestamp::to_epoch_string`] writes, exactly (no floating point on the way):
/// whole seconds, then optionally a point and at most six digits of the second.
impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, TimestampError> {
        let error = || TimestampError {
            input: text.to_owned(),
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let micros = fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(6)
            .fold(0_i64, |n, digit| n * 10 + i64::from(digit - b'0'));
        whole
            .parse::<i64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1_000_000))
            .and_then(|secs| secs.checked_add(micros))
            .map(Self)
            .ok_or_else(error)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        if !secs.is_finite() || secs.abs() > 9.0e12 {
            return Err(serde::de::Error::custom(format!(
                "{secs} is not a time in epoch seconds"
            )));
        }
        Ok(Self::from_secs_f64(secs))
    }
}

/// A duration in seconds, for people: `400 µs`, `12.5 ms`, `2.50 s`, `3.5 min`.
pub fn human_duration(secs: f64) -> String {
    match secs {
        s if s < 1e-3 => format!("{:.0} µs", s * 1e6),
        s if s < 1.0 => format!("{:.1} ms", s * 1e3),
        s if s < 120.0 => format!("{s:.2} s"),
        s => format!("{:.1} min", s / 60.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_strings_read_back_exactly() {
        for micros in [
            0,
            1,
            999_999,
            1_623_881_816_333_504,
            -1,
            -1_500_000,
            i64::MAX / 2,
        ] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(t.to_epoch_string().parse::<Timestamp>(), Ok(t), "{micros}");
        }
        assert_eq!("12".parse(), Ok(Timestamp::from_micros(12_000_000)));
        assert_eq!("12.5".parse(), Ok(Timestamp::from_micros(12_500_000)));
        for bad in [
            "",
            ".5",
            "12.1234567",
            "12.-5",
            "1e9",
            "x",
            "12.5.6",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn epoch_string_keeps_microseconds() {
        let t = Timestamp::from_micros(1_623_881_816_333_504);
        assert_eq!(t.to_epoch_string(), "1623881816.333504");
        assert_eq!(Timestamp::from_secs_f64(t.as_secs_f64()), t);
        assert_eq!(Timestamp::from_micros(5).to_epoch_string(), "0.000005");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0.0004), "400 µs");
        assert_eq!(human_duration(0.0125), "12.5 ms");
        assert_eq!(human_duration(2.5), "2.50 s");
        assert_eq!(human_duration(210.0), "3.5 min");
    }
}
