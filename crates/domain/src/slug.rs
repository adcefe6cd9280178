//! Slugs: the names of tenants (in SCIM base URLs) and of organizations.

/// The longest slug: a DNS label.
pub(crate) const SLUG_MAX_LEN: usize = 63;

/// Why `s` is not a slug (1 to 63 lowercase letters, digits and '-', starting and ending with a
/// letter or digit), or `None` when it is one.
pub(crate) fn slug_error(s: &str) -> Option<String> {
    let explain = |why: &str| {
        Some(format!(
            "`{s}` {why}; use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    };
    if s.is_empty() || s.len() > SLUG_MAX_LEN {
        return explain("has the wrong length");
    }
    if let Some(bad) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return explain(&format!("contains `{bad}`"));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return explain("starts or ends with '-'");
    }
    None
}
