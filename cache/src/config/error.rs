//! What is wrong with a configuration, said so an operator can act on it: the file, the line
//! and column, the field's path and what was expected.

use std::fmt;

/// A configuration that could not be read or built: where, and what was expected.
///
/// ```
/// use layercake::config::Config;
/// let error = Config::from_yaml("policy:\n  concurrency: 0\n").unwrap_err();
/// assert_eq!(error.path(), "policy.concurrency");
/// assert_eq!(error.line(), Some(2));
/// assert!(error.to_string().contains("nonzero"), "{error}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: Option<String>,
    path: String,
    position: Option<(usize, usize)>,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            path: path.into(),
            position: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    pub(crate) fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// The path of the field at fault (`backend.compose.l2.redis.url`); empty for the file as a
    /// whole.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let error = Config::from_toml("[policy]\nttl = \"soon\"\n").unwrap_err();
    /// assert_eq!(error.path(), "policy.ttl");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The line of the field (1-based), where it is known.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let error = Config::from_yaml("name: a\nbogus: 1\n").unwrap_err();
    /// assert_eq!(error.line(), Some(2));
    /// ```
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// The column of the field (1-based), where it is known.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let error = Config::from_yaml("name: a\nbogus: 1\n").unwrap_err();
    /// assert_eq!(error.column(), Some(1));
    /// ```
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// What is wrong, and what was expected.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let error = Config::from_yaml("mode: public\n").unwrap_err();
    /// assert!(error.message().contains("shared"), "{}", error.message());
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        if let Some((line, column)) = self.position {
            write!(f, "{line}:{column}:")?;
        }
        if self.file.is_some() || self.position.is_some() {
            f.write_str(" ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The file formats a configuration is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Toml,
}

/// Where `path` (dotted, as in [`ConfigError::path`]) is written in `source`, best effort: the
/// line and column of its last key, for errors found after the file was read (a value that is
/// well-formed but not a valid cache). Block-style YAML and TOML tables are followed key by
/// key; what cannot be followed gives no position rather than a wrong one.
pub(crate) fn locate(source: &str, format: Format, path: &str) -> Option<(usize, usize)> {
    // `key[1].query`: the keys, without the indices of sequences.
    let keys: Vec<&str> = path
        .split('.')
        .map(|segment| segment.split('[').next().unwrap_or(""))
        .filter(|segment| !segment.is_empty())
        .collect();
    let lines: Vec<&str> = source.lines().collect();
    let mut from = 0;
    let mut found = None;
    for key in keys {
        let (line, column) = (from..lines.len())
            .find_map(|n| find_key(lines[n], key, format).map(|column| (n, column)))?;
        found = Some((line + 1, column + 1));
        // A TOML table header's keys are on the lines after it; a YAML key's children too,
        // or on the same line (flow style).
        from = line;
    }
    found
}

/// The column of `key` written as a key on `line`: `key:` in YAML, `key =`, `[key]` or
/// `[a.key]` in TOML.
fn find_key(line: &str, key: &str, format: Format) -> Option<usize> {
    let code = line.split('#').next().unwrap_or("");
    let mut start = 0;
    while let Some(offset) = code[start..].find(key) {
        let at = start + offset;
        let before = code[..at].chars().next_back();
        let after = code[at + key.len()..].trim_start();
        let starts = before.is_none_or(|c| matches!(c, ' ' | '\t' | '{' | ',' | '-' | '[' | '.'));
        let ends = match format {
            Format::Yaml => after.starts_with(':'),
            Format::Toml => {
                after.starts_with('=') || after.starts_with(']') || after.starts_with('.')
            }
        };
        if starts && ends {
            return Some(at);
        }
        start = at + key.len();
    }
    None
}
