//! RFC 7643 schemas as data: the User, Enterprise User and Group definitions that drive input
//! validation, filter resolution, PATCH, projection and the `/Schemas` discovery documents.

use crate::attr_path::AttrPath;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute of a schema (RFC 7643 §7).
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub description: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttrDef],
}

/// A schema: its URN and attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

/// The resource types this gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// Where an attribute path points in a stored resource, with canonical names.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// URN of the schema that defines the attribute (core or extension; the RFC 7643 §3.1 common
    /// attributes `id`, `externalId` and `meta` resolve to the core schema).
    pub schema: &'static str,
    /// True when the attribute lives in an extension, i.e. under the schema URN key in JSON.
    pub extension: bool,
    pub attr: &'static AttrDef,
    pub sub: Option<&'static AttrDef>,
}

impl AttrType {
    /// The name used in `/Schemas` (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

impl AttrDef {
    /// The sub-attribute called `name` (case-insensitive).
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub_attributes, name)
    }
}

impl ResourceKind {
    /// "User" / "Group".
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
    /// "/Users" / "/Groups".
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }
    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            Self::User => &USER_SCHEMA,
            Self::Group => &GROUP_SCHEMA,
        }
    }
    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        match self {
            Self::User => &USER_EXTENSIONS,
            Self::Group => &[],
        }
    }
    /// The core schema or an extension of this kind whose URN is `urn` (case-insensitive).
    pub fn schema_by_urn(self, urn: &str) -> Option<&'static SchemaDef> {
        let core = self.core_schema();
        if core.id.eq_ignore_ascii_case(urn) {
            return Some(core);
        }
        self.extension(urn)
    }
    /// The extension of this kind whose URN is `urn` (case-insensitive).
    pub fn extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions().iter().copied().find(|s| s.id.eq_ignore_ascii_case(urn))
    }
    /// A top-level attribute of the core schema or a common attribute (`id`, `externalId`,
    /// `meta`), by name (case-insensitive).
    pub fn core_attribute(self, name: &str) -> Option<&'static AttrDef> {
        find(self.core_schema().attributes, name).or_else(|| find(&COMMON, name))
    }
    /// Resolve a path case-insensitively against the core schema, the extensions (by URN prefix,
    /// or by bare name when unambiguous) and the common attributes `id`, `externalId`, `meta`.
    /// `None` when the schema has no such attribute or sub-attribute.
    pub fn resolve(self, path: &AttrPath) -> Option<Resolved> {
        // An `AttrPath` built by hand may carry a qualified name; the parsers always split it.
        if path.urn.is_none() {
            if let Some((urn, name)) = path.name.rsplit_once(':') {
                let split = AttrPath { urn: Some(urn.to_owned()), name: name.to_owned(), sub: path.sub.clone() };
                return self.resolve(&split);
            }
        }
        let (schema, attr) = match &path.urn {
            Some(urn) => {
                let schema = self.schema_by_urn(urn)?;
                let attr = if schema.id == self.core_schema().id {
                    self.core_attribute(&path.name)?
                } else {
                    find(schema.attributes, &path.name)?
                };
                (schema, attr)
            }
            None => match self.core_attribute(&path.name) {
                Some(attr) => (self.core_schema(), attr),
                None => {
                    // A bare extension attribute name, accepted when exactly one extension has it.
                    let mut found = self
                        .extensions()
                        .iter()
                        .filter_map(|schema| find(schema.attributes, &path.name).map(|attr| (*schema, attr)));
                    let first = found.next()?;
                    if found.next().is_some() {
                        return None;
                    }
                    first
                }
            },
        };
        let sub = match &path.sub {
            Some(sub) => Some(attr.sub_attribute(sub)?),
            None => None,
        };
        let extension = schema.id != self.core_schema().id;
        Some(Resolved { schema: schema.id, extension, attr, sub })
    }
}

impl Resolved {
    /// The attribute the path ends at: the sub-attribute when there is one.
    pub fn leaf(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.attr)
    }
    /// JSON keys from the resource root, e.g. `["name", "givenName"]`, or
    /// `["urn:...:enterprise:2.0:User", "manager", "value"]`.
    pub fn json_path(&self) -> Vec<&'static str> {
        let mut path = Vec::with_capacity(3);
        if self.extension {
            path.push(self.schema);
        }
        path.push(self.attr.name);
        if let Some(sub) = self.sub {
            path.push(sub.name);
        }
        path
    }
}

/// Every schema this gateway serves, for `/Schemas`.
pub fn all_schemas() -> &'static [&'static SchemaDef] {
    &ALL_SCHEMAS
}

static ALL_SCHEMAS: [&SchemaDef; 3] = [&USER_SCHEMA, &ENTERPRISE_USER_SCHEMA, &GROUP_SCHEMA];
static USER_EXTENSIONS: [&SchemaDef; 1] = [&ENTERPRISE_USER_SCHEMA];

/// The attribute called `name` in `defs` (case-insensitive).
pub fn find<'d>(defs: &'d [AttrDef], name: &str) -> Option<&'d AttrDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// The RFC 7643 §3.1 attributes every resource has. They belong to no schema document.
pub static COMMON: [AttrDef; 3] = [
    string("id", "Unique identifier for the resource, assigned by the service provider.")
        .exact()
        .read_only()
        .returned(Returned::Always)
        .unique(Uniqueness::Server),
    string("externalId", "Identifier for the resource as defined by the provisioning client.").exact(),
    complex(
        "meta",
        "Resource metadata maintained by the service provider.",
        &[
            string("resourceType", "The name of the resource type of the resource.").exact().read_only(),
            attr("created", AttrType::DateTime, "When the resource was added to the service provider.").read_only(),
            attr("lastModified", AttrType::DateTime, "When the resource was last updated.").read_only(),
            reference("location", "The URI of the resource.", &["uri"]).exact().read_only(),
            string("version", "The version (entity tag) of the resource.").exact().read_only(),
        ],
    )
    .read_only(),
];

// Shapes of the RFC 7643 §4.1.2 multi-valued attributes (`emails`, `phoneNumbers`, ...).
const fn value_sub(description: &'static str) -> AttrDef {
    string("value", description)
}
const fn display_sub(description: &'static str) -> AttrDef {
    string("display", description)
}
const fn type_sub(description: &'static str, canonical: &'static [&'static str]) -> AttrDef {
    string("type", description).canonical(canonical)
}
const fn primary_sub(description: &'static str) -> AttrDef {
    attr("primary", AttrType::Boolean, description)
}

pub static USER_SCHEMA: SchemaDef = SchemaDef {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: &[
        string(
            "userName",
            "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.",
        )
        .required()
        .unique(Uniqueness::Server),
        complex(
            "name",
            "The components of the user's real name.",
            &[
                string("formatted", "The full name, including all middle names, titles and suffixes, formatted for display."),
                string("familyName", "The family name of the User, or last name."),
                string("givenName", "The given name of the User, or first name."),
                string("middleName", "The middle name(s) of the User."),
                string("honorificPrefix", "The honorific prefix(es) of the User, or title (e.g. 'Ms.')."),
                string("honorificSuffix", "The honorific suffix(es) of the User, or suffix (e.g. 'III')."),
            ],
        ),
        string("displayName", "The name of the User, suitable for display to end-users."),
        string("nickName", "The casual way to address the user in real life."),
        reference("profileUrl", "A fully qualified URL pointing to a page representing the User's online profile.", &["external"]),
        string("title", "The user's title, such as \"Vice President\"."),
        string("userType", "Identifies the relationship between the organization and the user (e.g. 'Employee')."),
        string("preferredLanguage", "The User's preferred written or spoken language (RFC 7231 Accept-Language format)."),
        string("locale", "The User's default location for localizing currency, dates and numbers (e.g. 'en-US')."),
        string("timezone", "The User's time zone in IANA Time Zone database format (e.g. 'America/Los_Angeles')."),
        attr("active", AttrType::Boolean, "The User's administrative status."),
        string("password", "The User's cleartext password; never returned and not stored by this service.")
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never),
        complex(
            "emails",
            "Email addresses for the user.",
            &[
                value_sub("Email address for the user."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub("A label indicating the email's function, e.g. 'work' or 'home'.", &["work", "home", "other"]),
                primary_sub("Whether this is the preferred mailing address or primary email address."),
            ],
        )
        .multi(),
        complex(
            "phoneNumbers",
            "Phone numbers for the User.",
            &[
                value_sub("Phone number of the User."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub(
                    "A label indicating the phone number's function, e.g. 'work', 'home', 'mobile'.",
                    &["work", "home", "mobile", "fax", "pager", "other"],
                ),
                primary_sub("Whether this is the preferred phone number or primary phone number."),
            ],
        )
        .multi(),
        complex(
            "ims",
            "Instant messaging addresses for the User.",
            &[
                value_sub("Instant messaging address for the User."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub(
                    "A label indicating the instant messaging service, e.g. 'aim', 'xmpp'.",
                    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
                ),
                primary_sub("Whether this is the preferred messenger or primary messenger."),
            ],
        )
        .multi(),
        complex(
            "photos",
            "URLs of photos of the User.",
            &[
                reference("value", "URL of a photo of the User.", &["external"]),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub("A label indicating the photo's function, i.e. 'photo' or 'thumbnail'.", &["photo", "thumbnail"]),
                primary_sub("Whether this is the preferred photo or thumbnail."),
            ],
        )
        .multi(),
        complex(
            "addresses",
            "Physical mailing addresses for this User.",
            &[
                string("formatted", "The full mailing address, formatted for display or use with a mailing label."),
                string("streetAddress", "The full street address component, which may include house number, street name and P.O. box."),
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string("country", "The country name component, in ISO 3166-1 alpha-2 format."),
                type_sub("A label indicating the address's function, e.g. 'work' or 'home'.", &["work", "home", "other"]),
                primary_sub("Whether this is the preferred mailing address or primary address."),
            ],
        )
        .multi(),
        complex(
            "groups",
            "The groups the user belongs to, either directly or indirectly.",
            &[
                string("value", "The identifier of the User's group.").read_only(),
                reference("$ref", "The URI of the corresponding 'Group' resource.", &["User", "Group"]).read_only(),
                string("display", "A human-readable name, primarily used for display purposes.").read_only(),
                type_sub("A label indicating the membership: 'direct' or 'indirect'.", &["direct", "indirect"]).read_only(),
            ],
        )
        .multi()
        .read_only(),
        complex(
            "entitlements",
            "Entitlements for the User, each a thing the User has.",
            &[
                value_sub("The value of an entitlement."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub("A label indicating the entitlement's function.", &[]),
                primary_sub("Whether this is the primary entitlement."),
            ],
        )
        .multi(),
        complex(
            "roles",
            "Roles for the User, collectively representing who the User is.",
            &[
                value_sub("The value of a role."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub("A label indicating the role's function.", &[]),
                primary_sub("Whether this is the primary role."),
            ],
        )
        .multi(),
        complex(
            "x509Certificates",
            "Certificates issued to the User.",
            &[
                attr("value", AttrType::Binary, "The value of an X.509 certificate (DER, base64-encoded)."),
                display_sub("A human-readable name, primarily used for display purposes."),
                type_sub("A label indicating the certificate's function.", &[]),
                primary_sub("Whether this is the primary certificate."),
            ],
        )
        .multi(),
    ],
};

pub static ENTERPRISE_USER_SCHEMA: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person by the organization."),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            "The User's manager.",
            &[
                string("value", "The id of the SCIM resource representing the User's manager."),
                reference("$ref", "The URI of the SCIM resource representing the User's manager.", &["User"]),
                string("displayName", "The displayName of the User's manager.").read_only(),
            ],
        ),
    ],
};

pub static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: &[
        string("displayName", "A human-readable name for the Group.").required(),
        complex(
            "members",
            "A list of members of the Group.",
            &[
                string("value", "Identifier of the member of this Group.").mutability(Mutability::Immutable),
                reference(
                    "$ref",
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                    &["User", "Group"],
                )
                .mutability(Mutability::Immutable),
                string("display", "A human-readable name for the member.").read_only(),
                type_sub("A label indicating the type of resource, e.g. 'User' or 'Group'.", &["User", "Group"])
                    .mutability(Mutability::Immutable),
            ],
        )
        .multi(),
    ],
};

// Builders for the static definitions above: every attribute starts as a single-valued,
// optional, case-insensitive, read-write attribute returned by default, like RFC 7643 §7's
// defaults, and the chained calls state only what differs.
const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        description,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> AttrDef {
    attr(name, AttrType::String, description)
}

const fn reference(name: &'static str, description: &'static str, types: &'static [&'static str]) -> AttrDef {
    AttrDef { reference_types: types, ..attr(name, AttrType::Reference, description) }
}

const fn complex(name: &'static str, description: &'static str, subs: &'static [AttrDef]) -> AttrDef {
    AttrDef { sub_attributes: subs, ..attr(name, AttrType::Complex, description) }
}

impl AttrDef {
    const fn multi(self) -> Self {
        Self { multi_valued: true, ..self }
    }
    const fn required(self) -> Self {
        Self { required: true, ..self }
    }
    const fn exact(self) -> Self {
        Self { case_exact: true, ..self }
    }
    const fn read_only(self) -> Self {
        self.mutability(Mutability::ReadOnly)
    }
    const fn mutability(self, mutability: Mutability) -> Self {
        Self { mutability, ..self }
    }
    const fn returned(self, returned: Returned) -> Self {
        Self { returned, ..self }
    }
    const fn unique(self, uniqueness: Uniqueness) -> Self {
        Self { uniqueness, ..self }
    }
    const fn canonical(self, values: &'static [&'static str]) -> Self {
        Self { canonical_values: values, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(kind: ResourceKind, path: &str) -> Option<Resolved> {
        kind.resolve(&path.parse().unwrap())
    }

    fn json_path(kind: ResourceKind, path: &str) -> Vec<&'static str> {
        resolve(kind, path).unwrap_or_else(|| panic!("{path} does not resolve")).json_path()
    }

    #[test]
    fn resolves_core_attributes_case_insensitively() {
        let r = resolve(ResourceKind::User, "USERNAME").unwrap();
        assert_eq!(r.attr.name, "userName");
        assert_eq!(r.schema, USER);
        assert!(!r.extension);
        assert!(r.attr.required && !r.attr.case_exact && r.attr.uniqueness == Uniqueness::Server);
        assert_eq!(json_path(ResourceKind::User, "name.GIVENNAME"), ["name", "givenName"]);
        assert_eq!(json_path(ResourceKind::User, "emails.value"), ["emails", "value"]);
        assert_eq!(json_path(ResourceKind::User, "groups.$ref"), ["groups", "$ref"]);
        assert_eq!(json_path(ResourceKind::Group, "members.value"), ["members", "value"]);
        assert_eq!(json_path(ResourceKind::Group, "displayName"), ["displayName"]);
        assert_eq!(resolve(ResourceKind::User, "name.givenName").unwrap().leaf().name, "givenName");
    }

    #[test]
    fn resolves_common_attributes_for_both_kinds() {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let id = resolve(kind, "id").unwrap();
            assert_eq!(id.schema, kind.core_schema().id);
            assert!(
                id.attr.case_exact
                    && id.attr.returned == Returned::Always
                    && id.attr.mutability == Mutability::ReadOnly
            );
            assert!(resolve(kind, "externalId").unwrap().attr.case_exact);
            assert_eq!(json_path(kind, "meta.lastModified"), ["meta", "lastModified"]);
            assert_eq!(resolve(kind, "meta.created").unwrap().leaf().ty, AttrType::DateTime);
            assert!(resolve(kind, "meta.nope").is_none());
        }
    }

    #[test]
    fn resolves_urn_qualified_paths() {
        assert_eq!(
            json_path(ResourceKind::User, "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"),
            ["name", "givenName"]
        );
        assert_eq!(json_path(ResourceKind::User, "urn:ietf:params:scim:schemas:core:2.0:User:id"), ["id"]);
        assert_eq!(
            json_path(ResourceKind::User, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            [ENTERPRISE_USER, "manager"]
        );
        assert_eq!(
            json_path(ResourceKind::User, "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value"),
            [ENTERPRISE_USER, "manager", "value"]
        );
        let r =
            resolve(ResourceKind::User, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")
                .unwrap();
        assert!(r.extension);
        assert_eq!(r.schema, ENTERPRISE_USER);
        // A core attribute under the extension URN, and unknown URNs, do not resolve.
        assert!(resolve(ResourceKind::User, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName")
            .is_none());
        assert!(resolve(ResourceKind::User, "urn:example:custom:User:userName").is_none());
        assert!(resolve(ResourceKind::Group, "urn:ietf:params:scim:schemas:core:2.0:User:userName").is_none());
        assert_eq!(
            json_path(ResourceKind::Group, "urn:ietf:params:scim:schemas:core:2.0:Group:members.value"),
            ["members", "value"]
        );
    }

    #[test]
    fn resolves_bare_extension_names() {
        assert_eq!(json_path(ResourceKind::User, "department"), [ENTERPRISE_USER, "department"]);
        assert_eq!(json_path(ResourceKind::User, "EmployeeNumber"), [ENTERPRISE_USER, "employeeNumber"]);
        assert_eq!(json_path(ResourceKind::User, "manager.displayName"), [ENTERPRISE_USER, "manager", "displayName"]);
        assert!(resolve(ResourceKind::Group, "department").is_none());
    }

    #[test]
    fn hand_built_qualified_names_resolve() {
        let path = AttrPath { urn: None, name: format!("{ENTERPRISE_USER}:department"), sub: None };
        assert_eq!(ResourceKind::User.resolve(&path).unwrap().json_path(), [ENTERPRISE_USER, "department"]);
    }

    #[test]
    fn unknown_paths_do_not_resolve() {
        assert!(resolve(ResourceKind::User, "members").is_none());
        assert!(resolve(ResourceKind::Group, "groups").is_none());
        assert!(resolve(ResourceKind::Group, "userName").is_none());
        assert!(resolve(ResourceKind::User, "name.nope").is_none());
        assert!(resolve(ResourceKind::User, "userName.sub").is_none());
        assert!(resolve(ResourceKind::User, "nope").is_none());
    }

    #[test]
    fn kinds() {
        assert_eq!(ResourceKind::User.name(), "User");
        assert_eq!(ResourceKind::Group.endpoint(), "/Groups");
        assert_eq!(ResourceKind::User.core_schema().id, USER);
        assert_eq!(ResourceKind::User.extensions().len(), 1);
        assert!(ResourceKind::Group.extensions().is_empty());
        assert_eq!(all_schemas().iter().map(|s| s.id).collect::<Vec<_>>(), [USER, ENTERPRISE_USER, GROUP]);
    }

    #[test]
    fn rfc_7643_attribute_properties() {
        let user = ResourceKind::User;
        let password = resolve(user, "password").unwrap().attr;
        assert_eq!((password.mutability, password.returned), (Mutability::WriteOnly, Returned::Never));
        let groups = resolve(user, "groups").unwrap().attr;
        assert!(groups.multi_valued && groups.mutability == Mutability::ReadOnly);
        assert_eq!(resolve(user, "active").unwrap().attr.ty, AttrType::Boolean);
        assert_eq!(resolve(user, "emails.type").unwrap().leaf().canonical_values, ["work", "home", "other"]);
        assert_eq!(resolve(user, "addresses.primary").unwrap().leaf().ty, AttrType::Boolean);
        assert_eq!(resolve(user, "x509Certificates.value").unwrap().leaf().ty, AttrType::Binary);
        assert_eq!(resolve(user, "profileUrl").unwrap().attr.reference_types, ["external"]);
        assert_eq!(resolve(user, "manager.displayName").unwrap().leaf().mutability, Mutability::ReadOnly);
        let members = resolve(ResourceKind::Group, "members").unwrap().attr;
        assert!(members.multi_valued);
        assert_eq!(members.sub_attribute("value").unwrap().mutability, Mutability::Immutable);
        assert_eq!(members.sub_attribute("display").unwrap().mutability, Mutability::ReadOnly);
        assert_eq!(members.sub_attribute("type").unwrap().canonical_values, ["User", "Group"]);
        assert!(resolve(ResourceKind::Group, "displayName").unwrap().attr.required);
    }

    #[test]
    fn definitions_are_well_formed() {
        fn check(defs: &[AttrDef], depth: usize) {
            for (i, def) in defs.iter().enumerate() {
                assert!(!def.description.is_empty(), "{} has no description", def.name);
                assert_eq!(def.ty == AttrType::Complex, !def.sub_attributes.is_empty(), "{}", def.name);
                assert!(def.ty == AttrType::Reference || def.reference_types.is_empty(), "{}", def.name);
                assert!(
                    defs.iter().skip(i + 1).all(|other| !other.name.eq_ignore_ascii_case(def.name)),
                    "{} is defined twice",
                    def.name
                );
                assert!(depth == 0 || def.ty != AttrType::Complex, "complex sub-attribute {}", def.name);
                check(def.sub_attributes, depth + 1);
            }
        }
        for schema in all_schemas() {
            check(schema.attributes, 0);
        }
        check(&COMMON, 0);
    }
}
