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

    /// Append `(p1, p2, …)` for `x IN …`, as [`super::members::id_list`] writes it, for plan
    /// stability: up to `SMALL_SET` ids as placeholders, padded to a power of two with the last
    /// id; more (or none) as the rows of one JSON array value ([`Statement::json_id_rows`]).
    pub(super) fn id_list<S: AsRef<str>>(mut self, ids: &[S]) -> Self {
        match ids.last() {
            Some(last) if ids.len() <= super::members::SMALL_SET => {
                self = self.sql("(");
                for i in 0..ids.len().next_power_of_two() {
                    if i > 0 {
                        self = self.sql(", ");
                    }
                    self = self.bind(ids.get(i).unwrap_or(last).as_ref());
                }
                self.sql(")")
            }
            _ => self.json_id_rows(ids),
        }
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

    #[test]
    fn id_lists_are_written_as_the_member_statements_write_them() {
        use super::super::filter::Sql;
        for n in [0, 1, 3, 64, 65] {
            let ids: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
            for dialect in [Dialect::Postgres, Dialect::Sqlite] {
                let mut sql = Sql { args: vec![Arg::Text("tenant".into())] };
                let expected = super::super::members::id_list(dialect, &mut sql, &ids);
                let statement = Statement::new(dialect).bind("tenant").sql(" ").id_list(&ids);
                assert_eq!(statement.args, sql.args, "{n} ids");
                if dialect == Dialect::Postgres {
                    assert_eq!(statement.text(), format!("$1 {expected}"), "{n} ids");
                }
            }
        }
    }
}
