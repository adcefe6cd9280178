//! The properties the fuzz targets check, shared by the targets so each stays a few lines.
//!
//! Every check panics (which libFuzzer reports as a crash) when a property is violated.

pub mod structured;

use proto::filter::{self, Filter, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
use proto::patch::{self, PatchOperation};
use proto::path;
use proto::resource::normalize;
use proto::schema::{ResourceKind, ENTERPRISE_USER, GROUP, USER};
use proto::ErrorKind;
use serde_json::{json, Value};

/// `filter::parse` never panics; what it accepts has bounded nesting, prints canonically and
/// reads back to the same tree; evaluating it in memory never panics.
pub fn check_filter(input: &str) {
    let Ok(parsed) = filter::parse(input) else {
        return;
    };
    let nesting = nesting(&parsed);
    assert!(nesting <= MAX_FILTER_DEPTH, "nesting {nesting} exceeds {MAX_FILTER_DEPTH} for {input:?}");
    // Every node consumes at least one byte of input, so the tree is never deeper than the input
    // is long (and/or chains are the only way to nest without brackets).
    let depth = tree_depth(&parsed);
    assert!(depth <= input.len(), "tree depth {depth} for {} input bytes", input.len());

    let printed = parsed.to_string();
    match filter::parse(&printed) {
        Ok(again) => {
            assert_eq!(again, parsed, "{input:?} printed as {printed:?} reads back differently");
            assert_eq!(again.to_string(), printed, "printing is not stable");
        }
        // Printing quotes bare words and escapes control characters, so a filter near the size
        // limit can print longer than the limit.
        Err(e) if e.kind() == ErrorKind::TooLarge && printed.len() > MAX_FILTER_LEN => {}
        Err(e) => panic!("{input:?} printed as {printed:?}, which does not parse: {e}"),
    }

    // In-memory evaluation (PATCH value paths) over a resource with every kind of value.
    let defs = ResourceKind::User.core_schema().attributes;
    let user = sample_user();
    let _ = filter::matches(&parsed, &user, defs);
    if let Some(emails) = user.get("emails").and_then(Value::as_array) {
        let email_defs = proto::schema::find(defs, "emails").map_or(&[][..], |d| d.sub_attributes);
        for email in emails {
            let _ = filter::matches(&parsed, email, email_defs);
        }
    }
}

/// `path::parse` never panics, and what it accepts prints and reads back to the same path.
pub fn check_path(input: &str) {
    let Ok(parsed) = path::parse(input) else {
        return;
    };
    if let Some(inner) = &parsed.filter {
        let nesting = nesting(inner);
        assert!(nesting < MAX_FILTER_DEPTH, "nesting {nesting} inside the brackets of {input:?}");
    }
    let printed = parsed.to_string();
    match path::parse(&printed) {
        Ok(again) => assert_eq!(again, parsed, "{input:?} printed as {printed:?} reads back differently"),
        Err(e) if e.kind() == ErrorKind::TooLarge && printed.len() > MAX_FILTER_LEN => {}
        Err(e) => panic!("{input:?} printed as {printed:?}, which does not parse: {e}"),
    }
}

/// A PatchOp body parsed and applied to a stored User (with and without the enterprise
/// extension) and a stored Group: no panic; on error the resource is unchanged (atomicity); on
/// success the result is canonical (normalising it again changes nothing) and, for a group,
/// membership never lands in the resource JSON (it goes to `member_ops`).
pub fn check_patch_body(body: &Value) {
    let Ok(ops) = patch::parse_request(body) else {
        return;
    };
    check_patch_ops(&ops);
}

/// [`check_patch_body`] for operations already parsed (or built directly by a structured
/// fuzzer, which may produce shapes `parse_request` would refuse: `apply` must cope).
pub fn check_patch_ops(ops: &[PatchOperation]) {
    for (kind, stored) in fixtures() {
        let mut resource = stored.clone();
        match patch::apply(kind, &mut resource, ops) {
            Err(_) => assert_eq!(resource, stored, "a failed PATCH changed the {}", kind.name()),
            Ok(outcome) => {
                let again = normalize(kind, resource.clone())
                    .unwrap_or_else(|e| panic!("the patched {} does not normalise: {e}\n{resource:#}", kind.name()));
                assert_eq!(again, resource, "the patched {} is not canonical", kind.name());
                if kind == ResourceKind::Group {
                    assert!(resource.get("members").is_none(), "members written into the group JSON: {resource:#}");
                } else {
                    assert!(outcome.member_ops.is_empty(), "member operations on a user: {:?}", outcome.member_ops);
                }
            }
        }
    }
}

/// Nesting that the depth limit counts: `not (...)`, value paths and (inside them) brackets.
/// Parentheses leave no node behind, so this is a lower bound of the parser's depth.
fn nesting(filter: &Filter) -> usize {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => nesting(a).max(nesting(b)),
        Filter::Not(inner) => 1 + nesting(inner),
        Filter::ValuePath { filter, .. } => 1 + nesting(filter),
        Filter::Compare { .. } | Filter::Present(_) => 0,
    }
}

fn tree_depth(filter: &Filter) -> usize {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => 1 + tree_depth(a).max(tree_depth(b)),
        Filter::Not(inner) | Filter::ValuePath { filter: inner, .. } => 1 + tree_depth(inner),
        Filter::Compare { .. } | Filter::Present(_) => 1,
    }
}

fn sample_user() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE_USER],
        "userName": "bjensen@example.com",
        "externalId": "701984",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen, III"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true}],
        "roles": [{"value": "admin", "primary": "True"}],
        "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
        ENTERPRISE_USER: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        }
    })
}

/// Resources as the store keeps them: normalised, and a group without `members`.
fn fixtures() -> [(ResourceKind, Value); 3] {
    let canonical = |kind, body| match normalize(kind, body) {
        Ok(value) => value,
        Err(e) => panic!("fixture does not normalise: {e}"),
    };
    let mut full_user = sample_user();
    if let Some(fields) = full_user.as_object_mut() {
        fields.remove("meta");
    }
    [
        (ResourceKind::User, canonical(ResourceKind::User, full_user)),
        (ResourceKind::User, canonical(ResourceKind::User, json!({"schemas": [USER], "userName": "minimal"}))),
        (
            ResourceKind::Group,
            canonical(
                ResourceKind::Group,
                json!({"schemas": [GROUP], "displayName": "Tour Guides", "externalId": "tg"}),
            ),
        ),
    ]
}
