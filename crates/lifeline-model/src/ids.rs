//! Identifiers of tasks, task groups, functions and endpoints.
//!
//! Each is a 128-bit value written as a UUID (`8-4-4-4-12` lowercase hex). They are parsed once,
//! where they enter the system, and travel as their own types afterwards so that a function id can
//! never be passed where a task id is expected. Generating them is the caller's business: this
//! crate has no source of randomness.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not a well-formed identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError {
    pub kind: &'static str,
    pub input: String,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid {} id (expected a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b)",
            self.input, self.kind
        )
    }
}

impl std::error::Error for IdError {}

fn parse_uuid(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    let hex: Vec<u8> = match bytes.len() {
        32 => bytes.to_vec(),
        36 if [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-') => {
            bytes.iter().copied().filter(|&b| b != b'-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 {
        return None;
    }
    hex.iter().try_fold(0u128, |acc, &b| {
        let digit = (b as char).to_digit(16)?;
        Some(acc << 4 | u128::from(digit))
    })
}

fn write_uuid(value: u128, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let hex = format!("{value:032x}");
    write!(
        f,
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            pub const fn from_u128(value: u128) -> Self {
                Self(value)
            }

            pub const fn as_u128(self) -> u128 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_uuid(self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_uuid(s).map(Self).ok_or_else(|| IdError { kind: $kind, input: s.to_owned() })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A task: one function call on one endpoint.
    TaskId,
    "task"
);
id_type!(
    /// The tasks of one submission.
    TaskGroupId,
    "task group"
);
id_type!(
    /// A registered function (Python or shell).
    FunctionId,
    "function"
);
id_type!(
    /// A registered endpoint.
    EndpointId,
    "endpoint"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = TaskId::from_u128(0x0190_a1b2_c3d4_7e5f_8a9b_0c1d_2e3f_4a5b);
        let text = id.to_string();
        assert_eq!(text, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(text.parse::<TaskId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<TaskId>(), Ok(id));
        assert_eq!(text.replace('-', "").parse::<TaskId>(), Ok(id));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "x",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
            "0190a1b2c3d4-7e5f-8a9b-0c1d2e3f4a5b-",
            "g190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "+190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        ] {
            let err = bad.parse::<EndpointId>().expect_err(bad);
            assert_eq!(err.kind, "endpoint");
        }
    }
}
