//! One statement builder for both dialects: SQL text is appended in order and every value goes
//! through [`Statement::bind`], which writes the dialect's next placeholder (`$1`, `$2`, ... on
//! PostgreSQL, `?` on SQLite), so placeholders are never numbered by hand. Rows are decoded into
//! structs with `#[derive(sqlx::FromRow)]` through [`Statement::query_as`].

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, FromRow};

use super::filter::Arg;
use super::Dialect;
use crate::DomainError;

/// A value a statement can bind.
pub(super) trait Bind {
    fn into_arg(self) -> Arg;
}

impl Bind for Arg {
    fn into_arg(self) -> Arg {
        self
    }
}

impl Bind for &str {
    fn into_arg(self) -> Arg {
        Arg::Text(self.to_owned())
    }
}

impl Bind for String {
    fn into_arg(self) -> Arg {
        Arg::Text(self)
    }
}

impl Bind for Option<&str> {
    fn into_arg(self) -> Arg {
        self.map_or(Arg::NullText, Bind::into_arg)
    }
}

impl Bind for i64 {
    fn into_arg(self) -> Arg {
        Arg::Int(self)
    }
}

impl Bind for Option<i64> {
    fn into_arg(self) -> Arg {
        self.map_or(Arg::NullInt, Arg::Int)
    }
}

impl Bind for bool {
    fn into_arg(self) -> Arg {
        Arg::Bool(self)
    }
}

/// SQL text and its values, in order.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    dialect: Dialect,
    sql: String,
    args: Vec<Arg>,
}

impl Statement {
    pub(super) fn new(dialect: Dialect) -> Self {
        Self { dialect, sql: String::new(), args: Vec::new() }
    }

    /// Append SQL text. Values never go here: see [`Statement::bind`].
    pub(super) fn sql(mut self, text: &str) -> Self {
        self.sql.push_str(text);
        self
    }

    /// Append a placeholder for `value`.
    pub(super) fn bind(mut self, value: impl Bind) -> Self {
        self.args.push(value.into_arg());
        match self.dialect {
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.args.len().to_string());
            }
            Dialect::Sqlite => self.sql.push('?'),
        }
        self
    }

    /// The statement, ready to run.
    pub(super) fn query(&self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        self.args.iter().cloned().fold(sqlx::query(&self.sql), |q, arg| match arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
            Arg::Bool(b) => q.bind(b),
            Arg::NullText => q.bind(None::<String>),
            Arg::NullInt => q.bind(None::<i64>),
        })
    }

    /// The statement, its rows decoded as `T`.
    pub(super) fn query_as<T>(&self) -> sqlx::query::QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> FromRow<'r, AnyRow>,
    {
        let query = sqlx::query_as(&self.sql);
        self.args.iter().cloned().fold(query, |q, arg| match arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
            Arg::Bool(b) => q.bind(b),
            Arg::NullText => q.bind(None::<String>),
            Arg::NullInt => q.bind(None::<i64>),
        })
    }

    /// Append `(p1, p2, …)` for `x IN …`: up to [`super::members::SMALL_SET`] ids as placeholders,
    /// padded to a power of two with the last id so that few distinct statements reach the
    /// statement caches; more (or none) as the rows of one JSON array value
    /// ([`Statement::json_id_rows`]), which PostgreSQL joins by hashing.
    pub(super) fn id_list<S: AsRef<str>>(self, ids: &[S]) -> Self {
        match ids.last() {
            Some(last) if ids.len() <= super::members::SMALL_SET => {
                let padded = (0..ids.len().next_power_of_two()).map(|i| ids.get(i).unwrap_or(last).as_ref().into_arg());
                self.row(padded)
            }
            _ => self.json_id_rows(ids),
        }
    }

    /// Append `(p1, p2, …)`, one placeholder per value: the row of an `INSERT … VALUES`, or the
    /// list of an `IN`.
    pub(super) fn row(mut self, values: impl IntoIterator<Item = Arg>) -> Self {
        self = self.sql("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self = self.sql(", ");
            }
            self = self.bind(value);
        }
        self.sql(")")
    }

    /// Append a relation with one column `value`, one row per id, from one JSON array value:
    /// the relation of [`Dialect::json_array_param`], with this statement's placeholder.
    pub(super) fn json_id_rows<S: AsRef<str>>(self, ids: &[S]) -> Self {
        let (open, close) = match self.dialect {
            Dialect::Postgres => ("(SELECT value FROM json_array_elements_text(", "::json))"),
            Dialect::Sqlite => ("(SELECT value FROM json_each(", "))"),
        };
        self.sql(open).bind(super::json_ids(ids)).sql(close)
    }

    /// The dialect the statement is written in.
    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Append `text` written with placeholders of its own, `$1`, `$2`, ... standing for `args`
    /// (as the filter translator, [`super::filter::Sql`] and the [`Dialect`] helpers write them),
    /// renumbered as this statement's. On PostgreSQL each distinct one becomes the next number
    /// (one used twice stays one parameter); on SQLite each occurrence is a `?` with its own copy
    /// of the value. Quoted literals, such as the JSON path `'$.a'`, are copied unchanged.
    pub(super) fn fragment(mut self, text: &str, args: &[Arg]) -> Result<Self, DomainError> {
        let mut numbers: Vec<Option<usize>> = vec![None; args.len()];
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                quoted = !quoted;
            }
            if c != '$' || quoted || !chars.peek().is_some_and(char::is_ascii_digit) {
                self.sql.push(c);
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            let index = digits.parse::<usize>().ok().and_then(|k| k.checked_sub(1));
            let (Some(arg), Some(number)) = (index.and_then(|i| args.get(i)), index.and_then(|i| numbers.get_mut(i)))
            else {
                return Err(DomainError::internal(format!("placeholder ${digits} has no value")));
            };
            match self.dialect {
                Dialect::Postgres => {
                    let n = match number {
                        Some(n) => *n,
                        None => {
                            self.args.push(arg.clone());
                            *number = Some(self.args.len());
                            self.args.len()
                        }
                    };
                    self.sql.push('$');
                    self.sql.push_str(&n.to_string());
                }
                Dialect::Sqlite => {
                    self.args.push(arg.clone());
                    self.sql.push('?');
                }
            }
        }
        Ok(self)
    }

    /// Append a placeholder for `value` inside the text `template` writes for placeholder 1:
    /// one of the [`Dialect`] helpers, such as `|n| dialect.json_param(n)`.
    pub(super) fn bind_in(self, template: impl FnOnce(usize) -> String, value: impl Bind) -> Result<Self, DomainError> {
        self.fragment(&template(1), &[value.into_arg()])
    }

    /// The SQL text, for tests elsewhere in the store.
    #[cfg(test)]
    pub(super) fn sql_text(&self) -> &str {
        &self.sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(dialect: Dialect) -> Statement {
        Statement::new(dialect)
            .sql("UPDATE tokens SET revoked_at = ")
            .bind(7_i64)
            .sql(" WHERE id = ")
            .bind("abc")
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(7_i64)
            .sql(")")
    }

    #[test]
    fn placeholders_are_numbered_on_postgres_and_positional_on_sqlite() {
        assert_eq!(
            lookup(Dialect::Postgres).sql_text(),
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND (revoked_at IS NULL OR revoked_at > $3)"
        );
        assert_eq!(
            lookup(Dialect::Sqlite).sql_text(),
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?)"
        );
        assert_eq!(lookup(Dialect::Sqlite).args, vec![Arg::Int(7), Arg::Text("abc".into()), Arg::Int(7)]);
    }

    fn with_fragment(dialect: Dialect) -> Result<Statement, DomainError> {
        Statement::new(dialect)
            .sql("SELECT r.id FROM users r WHERE r.tenant_id = ")
            .bind("t")
            .sql(" AND ")
            .fragment(
                "(json_extract(r.data, '$.\"a$1\"') = $2 OR r.user_name = $2) AND r.active = $1",
                &[Arg::Bool(true), Arg::Text("x".into())],
            )?
            .sql(" AND r.id IN ")
            .bind_in(|n| format!("(SELECT value FROM json_each(${n}))"), "[]")
    }

    #[test]
    fn fragments_are_renumbered_and_literals_kept() -> Result<(), DomainError> {
        let postgres = with_fragment(Dialect::Postgres)?;
        assert_eq!(
            postgres.sql_text(),
            "SELECT r.id FROM users r WHERE r.tenant_id = $1 AND (json_extract(r.data, '$.\"a$1\"') = $2 OR r.user_name = $2) \
             AND r.active = $3 AND r.id IN (SELECT value FROM json_each($4))"
        );
        assert_eq!(
            postgres.args,
            vec![Arg::Text("t".into()), Arg::Text("x".into()), Arg::Bool(true), Arg::Text("[]".into())]
        );
        let sqlite = with_fragment(Dialect::Sqlite)?;
        assert_eq!(
            sqlite.sql_text(),
            "SELECT r.id FROM users r WHERE r.tenant_id = ? AND (json_extract(r.data, '$.\"a$1\"') = ? OR r.user_name = ?) \
             AND r.active = ? AND r.id IN (SELECT value FROM json_each(?))"
        );
        assert_eq!(
            sqlite.args,
            vec![
                Arg::Text("t".into()),
                Arg::Text("x".into()),
                Arg::Text("x".into()),
                Arg::Bool(true),
                Arg::Text("[]".into())
            ]
        );
        assert!(Statement::new(Dialect::Sqlite).fragment("a = $2", &[Arg::Int(1)]).is_err());
        Ok(())
    }
}
