//! The few places where PostgreSQL and SQLite SQL differ. Everything else is shared text.

/// The name of the group of a `group_members` row `m`, looked up by key.
pub(crate) const GROUP_NAME: &str =
    "(SELECT g.display_name FROM groups g WHERE g.tenant_id = m.tenant_id AND g.id = m.group_id)";

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The resource JSON as text in a SELECT list (PostgreSQL keeps it as `jsonb`).
    pub(crate) fn data_column(self, alias: &str) -> String {
        match self {
            Dialect::Postgres => format!("{alias}.data::text"),
            Dialect::Sqlite => format!("{alias}.data"),
        }
    }

    /// A bind parameter holding JSON text, as stored.
    pub(crate) fn json_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}::jsonb"),
            Dialect::Sqlite => format!("${n}"),
        }
    }

    /// A relation with one text column `value`, one row per element of a JSON array parameter.
    /// Passing id sets as one JSON array keeps set-based statements free of parameter limits.
    pub(crate) fn json_array_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("(SELECT value FROM json_array_elements_text(${n}::json))"),
            Dialect::Sqlite => format!("(SELECT value FROM json_each(${n}))"),
        }
    }

    /// A relation `(id, display)` from a JSON array parameter of `{"value", "display"}` objects.
    pub(crate) fn json_members_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("(SELECT e->>'value' AS id, e->>'display' AS display FROM json_array_elements(${n}::json) AS e)"),
            Dialect::Sqlite => format!("(SELECT json_extract(value, '$.value') AS id, json_extract(value, '$.display') AS display FROM json_each(${n}))"),
        }
    }

    /// A relation `(id, email, external_id)` from a JSON array parameter of
    /// `{"id", "email", "external_id"}` objects: product accounts to register.
    pub(crate) fn json_accounts_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!(
                "(SELECT e->>'id' AS id, e->>'email' AS email, e->>'external_id' AS external_id \
                 FROM json_array_elements(${n}::json) AS e)"
            ),
            Dialect::Sqlite => format!(
                "(SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.email') AS email, \
                 json_extract(value, '$.external_id') AS external_id FROM json_each(${n}))"
            ),
        }
    }

    /// A relation `(idx, type, data)` from a JSON array parameter of `{"type", "data"}` objects,
    /// `idx` counting from 0 and `data` in the dialect's stored JSON type: events to append.
    pub(crate) fn json_events_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!(
                "(SELECT e.ord - 1 AS idx, e.value->>'type' AS type, (e.value->'data')::jsonb AS data \
                 FROM json_array_elements(${n}::json) WITH ORDINALITY AS e(value, ord))"
            ),
            Dialect::Sqlite => format!(
                "(SELECT CAST(key AS INTEGER) AS idx, json_extract(value, '$.type') AS type, \
                 json_extract(value, '$.data') AS data FROM json_each(${n}))"
            ),
        }
    }

    /// A relation `(idx, id, kind)` from a JSON array parameter of `[id, kind]` pairs, `idx`
    /// counting from 0.
    pub(crate) fn json_pairs_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!(
                "(SELECT e.ord - 1 AS idx, e.value->>0 AS id, e.value->>1 AS kind \
                 FROM json_array_elements(${n}::json) WITH ORDINALITY AS e(value, ord))"
            ),
            Dialect::Sqlite => format!(
                "(SELECT CAST(key AS INTEGER) AS idx, json_extract(value, '$[0]') AS id, \
                 json_extract(value, '$[1]') AS kind FROM json_each(${n}))"
            ),
        }
    }

    /// A JSON object built in SQL from `(key, value)` expressions, in the stored JSON type.
    /// Values must be JSON already (see [`Self::as_json`]) or SQL scalars.
    pub(crate) fn json_object(self, pairs: &[(&str, String)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}, {v}")).collect();
        match self {
            Dialect::Postgres => format!("jsonb_build_object({})", args.join(", ")),
            Dialect::Sqlite => format!("json_object({})", args.join(", ")),
        }
    }

    /// A JSON object from literal keys and SQL scalar columns, leaving out the keys whose value
    /// is NULL.
    pub(crate) fn json_object_without_nulls(self, pairs: &[(&str, &str)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        match self {
            Dialect::Postgres => format!("jsonb_strip_nulls(jsonb_build_object({}))", args.join(", ")),
            // A merge patch drops the members whose value is null.
            Dialect::Sqlite => format!("json_patch('{{}}', json_object({}))", args.join(", ")),
        }
    }

    /// An expression holding JSON (text on SQLite) marked as JSON, so that an enclosing
    /// object nests it rather than quoting it as a string.
    pub(crate) fn as_json(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => expr.to_owned(),
            Dialect::Sqlite => format!("json({expr})"),
        }
    }

    /// A user's groups (`{alias}` a row of `users`) as one JSON array of `[id, displayName]`
    /// pairs in display order, or NULL (PostgreSQL) / `[]` (SQLite) for none: read with the user
    /// in one statement instead of a second query per page. The member index drives it and each
    /// group's name is a lookup by key (a subquery, not a join a planner without statistics could
    /// turn around into reading a large group's members). On PostgreSQL `OFFSET 0` keeps `x` a
    /// subquery of its own: inlined, each name was looked up twice, for the array and its order.
    pub(crate) fn user_groups(self, alias: &str) -> String {
        let (pairs, fence) = match self {
            Dialect::Postgres => {
                ("json_agg(json_build_array(x.id, x.display) ORDER BY x.display, x.id)::text", " OFFSET 0")
            }
            Dialect::Sqlite => ("json_group_array(json_array(x.id, x.display) ORDER BY x.display, x.id)", ""),
        };
        format!(
            "(SELECT {pairs} FROM (SELECT m.group_id AS id, {GROUP_NAME} AS display FROM {} \
             WHERE m.tenant_id = {alias}.tenant_id AND m.member_id = {alias}.id{fence}) x)",
            self.members_by_member()
        )
    }

    /// `group_members m`, to be read by member. SQLite without statistics would rather scan the
    /// tenant's entries of the covering primary key (tenant, group, member) than probe the
    /// member index: every membership of the tenant for each user once a group is large.
    pub(crate) fn members_by_member(self) -> &'static str {
        match self {
            Dialect::Postgres => "group_members m",
            Dialect::Sqlite => "group_members m INDEXED BY group_members_by_member",
        }
    }

    /// Null-safe inequality.
    pub(crate) fn is_distinct(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("{a} IS DISTINCT FROM {b}"),
            Dialect::Sqlite => format!("{a} IS NOT {b}"),
        }
    }

    /// A scalar inside a JSON document, as SQL text (booleans: see [`Self::json_bool`]).
    /// `keys` are canonical schema names, never client input, so quoting them inline is safe.
    pub(crate) fn json_text(self, doc: &str, keys: &[&str]) -> String {
        match self {
            Dialect::Postgres => format!("({doc} #>> '{}')", pg_path(keys)),
            Dialect::Sqlite => format!("json_extract({doc}, '{}')", sqlite_path(keys)),
        }
    }

    /// A JSON sub-document (object or array) inside `doc`, in the dialect's JSON type.
    pub(crate) fn json_node(self, doc: &str, keys: &[&str]) -> String {
        match self {
            Dialect::Postgres => format!("({doc} #> '{}')", pg_path(keys)),
            Dialect::Sqlite => format!("json_extract({doc}, '{}')", sqlite_path(keys)),
        }
    }

    /// `expr` (from [`Self::json_text`]) compared with a boolean literal.
    pub(crate) fn json_bool(self, expr: &str, value: bool) -> String {
        match (self, value) {
            (Dialect::Postgres, true) => format!("{expr} = 'true'"),
            (Dialect::Postgres, false) => format!("{expr} = 'false'"),
            (Dialect::Sqlite, true) => format!("{expr} = 1"),
            (Dialect::Sqlite, false) => format!("{expr} = 0"),
        }
    }

    /// A JSON number compared numerically.
    pub(crate) fn json_number(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr})::numeric"),
            Dialect::Sqlite => expr.to_owned(),
        }
    }

    /// `FROM` items iterating the elements of the JSON array at `keys` as `alias`, and the
    /// expression for each element's document.
    pub(crate) fn json_elements(self, doc: &str, keys: &[&str], alias: &str) -> (String, String) {
        match self {
            Dialect::Postgres => {
                let node = self.json_node(doc, keys);
                (
                    format!("jsonb_array_elements(CASE WHEN jsonb_typeof({node}) = 'array' THEN {node} ELSE '[]'::jsonb END) AS {alias}(v)"),
                    format!("{alias}.v"),
                )
            }
            Dialect::Sqlite => (
                format!("json_each(CASE WHEN json_type({doc}, '{p}') = 'array' THEN json_extract({doc}, '{p}') ELSE '[]' END) AS {alias}", p = sqlite_path(keys)),
                format!("{alias}.value"),
            ),
        }
    }

    /// Whether the JSON value at `keys` is a non-empty array or an object.
    pub(crate) fn json_present_node(self, doc: &str, keys: &[&str]) -> String {
        match self {
            Dialect::Postgres => {
                let node = self.json_node(doc, keys);
                format!("(jsonb_typeof({node}) = 'object' OR (jsonb_typeof({node}) = 'array' AND jsonb_array_length({node}) > 0))")
            }
            Dialect::Sqlite => {
                let p = sqlite_path(keys);
                format!("(json_type({doc}, '{p}') = 'object' OR (json_type({doc}, '{p}') = 'array' AND json_array_length({doc}, '{p}') > 0))")
            }
        }
    }

    /// Substring test, case-sensitive on both backends.
    pub(crate) fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Postgres => format!("strpos({haystack}, {needle}) > 0"),
            Dialect::Sqlite => format!("instr({haystack}, {needle}) > 0"),
        }
    }

    pub(crate) fn ends_with(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Postgres => format!("right({haystack}, length({needle})) = {needle}"),
            Dialect::Sqlite => format!("substr({haystack}, -length({needle})) = {needle}"),
        }
    }

    /// Text ordering that is bytewise on both backends (SQLite's default), so `gt`/`lt` and
    /// sorting agree whatever the PostgreSQL database collation is.
    pub(crate) fn bytewise(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("({expr}) COLLATE \"C\""),
            Dialect::Sqlite => expr.to_owned(),
        }
    }

    /// Row lock for the read that starts a read-modify-write. SQLite write transactions begin
    /// with `BEGIN IMMEDIATE`, which already serializes writers.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// `{a,b}` with each key double-quoted for a PostgreSQL text-array path literal.
fn pg_path(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\"").replace('\'', "''")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// `$."a"."b"` for SQLite's JSON path syntax (URN keys contain `:` and `.`).
fn sqlite_path(keys: &[&str]) -> String {
    let mut p = String::from("$");
    for k in keys {
        p.push_str(&format!(".\"{}\"", k.replace('"', "\\\"").replace('\'', "''")));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_quote_urn_keys() {
        let keys = ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"];
        assert_eq!(
            Dialect::Postgres.json_text("r.data", &keys),
            "(r.data #>> '{\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"manager\",\"value\"}')"
        );
        assert_eq!(
            Dialect::Sqlite.json_text("r.data", &keys),
            "json_extract(r.data, '$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\"')"
        );
    }
}
