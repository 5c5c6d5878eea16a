//! The database URL, parsed once and never printed with its password.

use std::path::PathBuf;

use crate::Backend;

/// A database URL whose `Debug` and `Display` forms hide the password, so that it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatabaseUrlError {
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedScheme,
    #[error("the SQLite URL names no file")]
    MissingPath,
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH[?options]`, `postgres://…` or `postgresql://…`.
    pub fn parse(raw: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DatabaseUrlError::UnsupportedScheme);
        };
        let url = DatabaseUrl {
            raw: raw.to_owned(),
            backend,
        };
        if backend == Backend::Sqlite && url.sqlite_path().is_none() {
            return Err(DatabaseUrlError::MissingPath);
        }
        Ok(url)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file path of a SQLite URL, without the scheme and options.
    fn sqlite_path(&self) -> Option<&str> {
        let rest = self
            .raw
            .strip_prefix("sqlite://")
            .or_else(|| self.raw.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty()).then_some(path)
    }

    /// The directory a SQLite file lives in, so that it can be created on first start.
    pub(crate) fn sqlite_parent_dir(&self) -> Option<PathBuf> {
        let path = PathBuf::from(self.sqlite_path()?);
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
    }

    /// The string handed to the driver: for SQLite, `mode=rwc` is added so the file is created
    /// on first start.
    pub(crate) fn connect_string(&self) -> String {
        match self.backend {
            Backend::Sqlite if !self.raw.contains("mode=") => {
                let sep = if self.raw.contains('?') { '&' } else { '?' };
                format!("{}{sep}mode=rwc", self.raw)
            }
            _ => self.raw.clone(),
        }
    }

    /// The URL as given, password included, for handing to a driver or a child process.
    /// Never log it.
    pub fn expose_secret(&self) -> String {
        self.raw.clone()
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some(scheme_end) = self.raw.find("://") else {
            return self.raw.clone();
        };
        let authority_start = scheme_end + 3;
        let authority_end = self.raw[authority_start..]
            .find('/')
            .map_or(self.raw.len(), |i| authority_start + i);
        let authority = &self.raw[authority_start..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:***{}",
                &self.raw[..authority_start],
                &authority[..colon],
                &self.raw[authority_start + at..]
            ),
            _ => self.raw.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_printed() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/mypay").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db.internal:5432/mypay");
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn url_without_password_is_unchanged() {
        let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(url.redacted(), "postgres://postgres@127.0.0.1/test");
    }

    #[test]
    fn sqlite_file_is_created_in_its_directory() {
        let url = DatabaseUrl::parse("sqlite://./mypay-data/mypay.db").unwrap();
        assert_eq!(url.backend(), Backend::Sqlite);
        assert_eq!(url.sqlite_parent_dir(), Some(PathBuf::from("./mypay-data")));
        assert_eq!(
            url.connect_string(),
            "sqlite://./mypay-data/mypay.db?mode=rwc"
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert_eq!(
            DatabaseUrl::parse("mysql://x/y"),
            Err(DatabaseUrlError::UnsupportedScheme)
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://"),
            Err(DatabaseUrlError::MissingPath)
        );
    }
}
