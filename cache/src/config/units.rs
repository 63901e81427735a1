//! The values of a configuration file that are not plain numbers or strings: durations, byte
//! sizes, and HTTP names, each read from the form an operator writes and written back in a form
//! that reads back the same.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration: a number of seconds (`60`) or a human-readable string (`"250ms"`, `"5m"`,
/// `"1h 30m"`), as [humantime](https://docs.rs/humantime) reads it.
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml("policy: { ttl: 90, stale: 5m 30s }").unwrap();
/// assert_eq!(config.policy.ttl.unwrap().get(), std::time::Duration::from_secs(90));
/// assert_eq!(config.policy.stale.unwrap().get(), std::time::Duration::from_secs(330));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// The duration.
    ///
    /// ```
    /// use layercake::config::HumanDuration;
    /// assert_eq!(HumanDuration::from(std::time::Duration::from_secs(1)).get().as_millis(), 1000);
    /// ```
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(duration: Duration) -> Self {
        HumanDuration(duration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration: seconds, or a string such as \"250ms\", \"5m\", \"1h 30m\"",
                )
            }

            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(seconds)))
            }

            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<HumanDuration, E> {
                u64::try_from(seconds)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(seconds), &self))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(text)
                    .map(HumanDuration)
                    .map_err(|e| E::custom(format_args!("invalid duration {text:?}: {e}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A size in bytes: a number (`65536`) or a string with a unit (`"64 KiB"`, `"4MB"`), as
/// [bytesize](https://docs.rs/bytesize) reads it.
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml("limits: { max_body_size: 64 KiB }").unwrap();
/// assert_eq!(config.limits.max_body_size.unwrap().get(), 65536);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

impl ByteSize {
    /// The size in bytes.
    ///
    /// ```
    /// use layercake::config::ByteSize;
    /// assert_eq!(ByteSize::from(1024).get(), 1024);
    /// ```
    pub fn get(self) -> u64 {
        self.0
    }

    /// The size as a `usize`, saturating.
    pub(crate) fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        ByteSize(bytes)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: bytes, or a string such as \"64 KiB\", \"4MB\"")
            }

            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(bytes))
            }

            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ByteSize, E> {
                u64::try_from(bytes)
                    .map(ByteSize)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(bytes), &self))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                bytesize::ByteSize::from_str(text)
                    .map(|size| ByteSize(size.as_u64()))
                    .map_err(|e| E::custom(format_args!("invalid size {text:?}: {e}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A value written as text and checked when the file is read: an HTTP method, a header name.
///
/// ```
/// use layercake::config::{Config, Text};
/// let config = Config::from_yaml("methods: [GET, PURGE]").unwrap();
/// assert_eq!(config.methods.unwrap()[1].get(), &http::Method::from_bytes(b"PURGE").unwrap());
/// assert!(Config::from_yaml("methods: [\"GE T\"]").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text<T>(T);

impl<T> Text<T> {
    /// The value.
    ///
    /// ```
    /// use layercake::config::Text;
    /// let name = Text::from(http::header::ACCEPT);
    /// assert_eq!(name.get().as_str(), "accept");
    /// ```
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The value, owned.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Text<T> {
    fn from(value: T) -> Self {
        Text(value)
    }
}

/// What a [`Text`] may hold: parsed from a string, written back as one.
pub trait TextValue: Sized {
    /// What the value is, for the error message: "an HTTP method".
    const EXPECTED: &'static str;
    /// Reads the value.
    fn parse(text: &str) -> Option<Self>;
    /// Writes the value.
    fn text(&self) -> &str;
}

impl TextValue for http::Method {
    const EXPECTED: &'static str = "an HTTP method (a token such as GET)";

    fn parse(text: &str) -> Option<Self> {
        http::Method::from_bytes(text.as_bytes()).ok()
    }

    fn text(&self) -> &str {
        self.as_str()
    }
}

impl TextValue for http::HeaderName {
    const EXPECTED: &'static str = "a header name (a token such as content-type)";

    fn parse(text: &str) -> Option<Self> {
        http::HeaderName::from_bytes(text.as_bytes()).ok()
    }

    fn text(&self) -> &str {
        self.as_str()
    }
}

impl<T: TextValue> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.text())
    }
}

impl<'de, T: TextValue> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        T::parse(&text)
            .map(Text)
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&text), &T::EXPECTED))
    }
}

/// An HTTP status code, 100 to 999.
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml("statuses: [200, 404]").unwrap();
/// assert_eq!(config.statuses.unwrap()[1].get(), http::StatusCode::NOT_FOUND);
/// assert!(Config::from_yaml("statuses: [42]").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(http::StatusCode);

impl Status {
    /// The status code.
    ///
    /// ```
    /// use layercake::config::Status;
    /// assert_eq!(Status::from(http::StatusCode::OK).get().as_u16(), 200);
    /// ```
    pub fn get(self) -> http::StatusCode {
        self.0
    }
}

impl From<http::StatusCode> for Status {
    fn from(status: http::StatusCode) -> Self {
        Status(status)
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.0.as_u16())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(deserializer)?;
        http::StatusCode::from_u16(code).map(Status).map_err(|_| {
            de::Error::invalid_value(
                de::Unexpected::Unsigned(code.into()),
                &"an HTTP status code (100 to 999)",
            )
        })
    }
}
