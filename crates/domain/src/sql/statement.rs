//! One statement builder for both dialects: SQL text is appended in order and every value goes
//! through [`Statement::bind`], which writes the dialect's next placeholder (`$1`, `$2`, ... on
//! PostgreSQL, `?` on SQLite), so placeholders are never numbered by hand. Rows are decoded into
//! structs with `#[derive(sqlx::FromRow)]` through [`Statement::query_as`].

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, FromRow};

use super::bound;
use super::filter::Arg;
use super::Dialect;

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
        bound(&self.sql, self.args.clone())
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

    #[cfg(test)]
    fn text(&self) -> &str {
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
            lookup(Dialect::Postgres).text(),
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND (revoked_at IS NULL OR revoked_at > $3)"
        );
        assert_eq!(
            lookup(Dialect::Sqlite).text(),
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?)"
        );
        assert_eq!(lookup(Dialect::Sqlite).args, vec![Arg::Int(7), Arg::Text("abc".into()), Arg::Int(7)]);
    }
}
