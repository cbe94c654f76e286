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

/// The value of a UUID's text (`8-4-4-4-12` hex digits, or the 32 digits alone), in either case.
fn parse_uuid(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    let dashed = match bytes.len() {
        32 => false,
        36 => true,
        _ => return None,
    };
    let mut value = 0_u128;
    for (i, &b) in bytes.iter().enumerate() {
        if dashed && matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        value = value << 4 | u128::from(char::from(b).to_digit(16)?);
    }
    Some(value)
}

/// `value` as a UUID's text: `8-4-4-4-12` lowercase hex digits. Written by hand rather than
/// through `format!`: ids are written for every event the service stores and sends.
fn uuid_text(value: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in value.to_be_bytes().into_iter().enumerate() {
        // A dash before the 5th, 7th, 9th and 11th byte.
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    text
}

/// Calls `write` with `value`'s text as a UUID.
fn with_uuid<R>(value: u128, write: impl FnOnce(&str) -> R) -> R {
    let text = uuid_text(value);
    // Hex digits and dashes only: always UTF-8.
    write(std::str::from_utf8(&text).unwrap_or_default())
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
                with_uuid(self.0, |text| f.write_str(text))
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
                with_uuid(self.0, |text| serializer.serialize_str(text))
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
            "0190a1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a-b",
            "0190a1b2-c3d4-7e5f-8a9b0c1d2e3f4a5b",
        ] {
            let err = bad.parse::<EndpointId>().expect_err(bad);
            assert_eq!(err.kind, "endpoint");
        }
    }

    // proptest is a native dev-dependency only; the wasm tests run the examples above.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn every_value_is_written_as_its_hex_digits_in_groups(value: u128) {
            let hex = format!("{value:032x}");
            let expected = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]
            );
            let id = FunctionId::from_u128(value);
            proptest::prop_assert_eq!(id.to_string(), expected.clone());
            proptest::prop_assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{expected}\"")));
            proptest::prop_assert_eq!(expected.parse::<FunctionId>(), Ok(id));
            proptest::prop_assert_eq!(hex.to_uppercase().parse::<FunctionId>(), Ok(id));
        }
    }
}
