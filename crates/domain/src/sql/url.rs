use std::fmt;
use std::str::FromStr;

use super::dialect::Dialect;

/// A database URL. Its `Debug` and `Display` hide any password, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    dialect: Dialect,
}

/// The URL's scheme is not one scimgate can store in.
#[derive(Debug, thiserror::Error)]
#[error("SCIMGATE_DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got `{0}`)")]
pub struct UnsupportedDatabaseUrl(String);

impl FromStr for DatabaseUrl {
    type Err = UnsupportedDatabaseUrl;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let dialect = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Dialect::Postgres
        } else if s.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err(UnsupportedDatabaseUrl(redact_password(s)));
        };
        Ok(Self { url: s.to_owned(), dialect })
    }
}

impl DatabaseUrl {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL as configured, password included. Only for handing to another process or
    /// setting; never for logs.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The file of a SQLite database (as written: relative paths are relative to the current
    /// directory); `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        if self.dialect != Dialect::Sqlite {
            return None;
        }
        let rest = self.url.strip_prefix("sqlite://").or_else(|| self.url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
    }

    /// Whether the URL says itself how to open the database (`mode=ro`, `mode=rwc`, ...).
    pub fn names_mode(&self) -> bool {
        self.url.contains("mode=")
    }

    /// The URL to connect with. For SQLite, the file is created when missing.
    pub(crate) fn connect_url(&self) -> String {
        match self.dialect {
            Dialect::Sqlite if !self.url.contains("mode=") && !self.url.contains(":memory:") => {
                let sep = if self.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}mode=rwc", self.url)
            }
            _ => self.url.clone(),
        }
    }

    /// The URL with the same server but another database name (PostgreSQL only), for tests and
    /// tools that create databases.
    pub fn with_database(&self, name: &str) -> Self {
        let (base, query) = match self.url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.url.as_str(), None),
        };
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let base = match base[after_scheme..].find('/') {
            Some(i) => &base[..after_scheme + i],
            None => base,
        };
        let url = match query {
            Some(q) => format!("{base}/{name}?{q}"),
            None => format!("{base}/{name}"),
        };
        Self { url, dialect: self.dialect }
    }
}

/// The URL with its password (if any) replaced by `***`, for logs and messages.
pub fn redact_password(url: &str) -> String {
    // scheme://user:password@host → scheme://user:***@host
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else { return url.to_owned() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_password(&self.url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url: DatabaseUrl = "postgres://scim:s3cret@db:5432/scim?sslmode=require".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://scim:***@db:5432/scim?sslmode=require");
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn schemes_pick_the_dialect() {
        assert_eq!("sqlite://scimgate.db".parse::<DatabaseUrl>().unwrap().dialect(), Dialect::Sqlite);
        assert_eq!("postgresql://h/db".parse::<DatabaseUrl>().unwrap().dialect(), Dialect::Postgres);
        let err = "mysql://u:pw@h/db".parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(err.contains("SCIMGATE_DATABASE_URL") && !err.contains("pw"));
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        let file = |url: &str| url.parse::<DatabaseUrl>().unwrap().sqlite_file();
        assert_eq!(file("sqlite://scimgate.db"), Some("scimgate.db".into()));
        assert_eq!(file("sqlite:///var/lib/scimgate/db.sqlite?mode=rwc"), Some("/var/lib/scimgate/db.sqlite".into()));
        assert_eq!(file("sqlite:data.db"), Some("data.db".into()));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://h/db"), None);
    }

    #[test]
    fn sqlite_files_are_created_on_demand() {
        let url: DatabaseUrl = "sqlite://scimgate.db".parse().unwrap();
        assert_eq!(url.connect_url(), "sqlite://scimgate.db?mode=rwc");
    }

    #[test]
    fn another_database_on_the_same_server() {
        let url: DatabaseUrl = "postgres://u@127.0.0.1:5432/test?sslmode=disable".parse().unwrap();
        assert_eq!(url.with_database("t1").connect_url(), "postgres://u@127.0.0.1:5432/t1?sslmode=disable");
        let url: DatabaseUrl = "postgres://127.0.0.1".parse().unwrap();
        assert_eq!(url.with_database("t1").connect_url(), "postgres://127.0.0.1/t1");
    }
}
