use crate::TokenError;

/// What a token may do. An IdP that only provisions users needs no group rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    UsersRead,
    UsersWrite,
    GroupsRead,
    GroupsWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::UsersRead, Scope::UsersWrite, Scope::GroupsRead, Scope::GroupsWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::GroupsRead => "groups:read",
            Scope::GroupsWrite => "groups:write",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::UsersRead => 1,
            Scope::UsersWrite => 2,
            Scope::GroupsRead => 4,
            Scope::GroupsWrite => 8,
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| TokenError::UnknownScope(s.to_owned()))
    }
}

/// A set of scopes, stored as a space-separated list (`users:read users:write`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Self::from_iter(Scope::ALL)
    }

    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parse a space- or comma-separated list.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        s.split([' ', ',']).filter(|p| !p.is_empty()).map(str::parse::<Scope>).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Scope::ALL.into_iter().filter(|s| self.allows(*s)).map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl std::fmt::Debug for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scopes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_stored_form() {
        let scopes = Scopes::parse("users:read,users:write").unwrap();
        assert!(scopes.allows(Scope::UsersWrite) && !scopes.allows(Scope::GroupsRead));
        assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
        assert_eq!(Scopes::all().to_string(), "users:read users:write groups:read groups:write");
    }

    #[test]
    fn unknown_scopes_are_refused() {
        assert_eq!(Scopes::parse("users:read admin").unwrap_err(), TokenError::UnknownScope("admin".into()));
    }
}
