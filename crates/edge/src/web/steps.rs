//! Each IdP's setup steps (from docs/idp/), with the tenant's own values filled in.

use proto::IdpProfile;

/// A value the IT admin pastes into the IdP, shown with a copy button.
pub struct Value {
    pub label: &'static str,
    pub value: String,
    /// The element id the copy button points at.
    pub id: String,
}

pub struct Step {
    pub text: String,
    pub values: Vec<Value>,
}

pub struct Guide {
    pub name: &'static str,
    pub steps: Vec<Step>,
}

/// The name an IT admin knows the IdP by.
pub fn idp_name(idp: IdpProfile) -> &'static str {
    match idp {
        IdpProfile::Entra => "Microsoft Entra ID",
        IdpProfile::Okta => "Okta",
        IdpProfile::OneLogin => "OneLogin",
        IdpProfile::JumpCloud => "JumpCloud",
        IdpProfile::Ping => "Ping Identity",
        IdpProfile::Generic => "Another SCIM 2.0 client",
    }
}

fn step(text: &str) -> Step {
    Step { text: text.to_owned(), values: Vec::new() }
}

fn step_with(text: &str, values: Vec<Value>) -> Step {
    Step { text: text.to_owned(), values }
}

fn value(label: &'static str, value: &str, id: &str) -> Value {
    Value { label, value: value.to_owned(), id: id.to_owned() }
}

/// The Tenant URL an IdP is given: Entra's carries `?aadOptscim062020`, which switches it to
/// its standards-compliant PATCH format.
pub fn tenant_url_for(idp: IdpProfile, scim_url: &str) -> String {
    match idp {
        IdpProfile::Entra => format!("{scim_url}?aadOptscim062020"),
        _ => scim_url.to_owned(),
    }
}

/// The steps for `idp`. `oauth`: the tenant takes OAuth clients, not bearer tokens.
pub fn guide(idp: IdpProfile, scim_url: &str, token_url: &str, oauth: bool) -> Guide {
    let url = tenant_url_for(idp, scim_url);
    let credential = if oauth {
        "the client id and client secret from the Credential page"
    } else {
        "the Secret Token from the Credential page"
    };
    let steps = match idp {
        IdpProfile::Entra => {
            let mut values = vec![value("Tenant URL", &url, "tenant-url")];
            if oauth {
                values.push(value("Token Endpoint", token_url, "token-url"));
            }
            vec![
                step("In the Microsoft Entra admin center, go to Entra ID > Enterprise apps and select New application."),
                step("Select Create your own application, give it a name, choose Integrate any other application you don't find in the gallery (Non-gallery), and select Create. If you already use an application for single sign-on, open that one instead."),
                step("In the application, open Provisioning, select Get started, and set Provisioning Mode to Automatic."),
                step_with(&format!("Under Admin Credentials, enter the Tenant URL below (keep ?aadOptscim062020: it makes Entra send standard PATCH requests) and {credential}."), values),
                step("Select Test Connection, then Save. Entra looks up a random user and gets an empty list: that is success."),
                step("Under Users and groups, assign the users and groups to provision, then set Provisioning Status to On."),
            ]
        }
        IdpProfile::Okta => vec![
            step("In the Okta Admin Console, go to Applications > Applications and select Create App Integration (SAML 2.0 or SWA), or open your existing single sign-on app."),
            step("On the General tab, select Edit under App Settings, set Provisioning to SCIM, and select Save."),
            step_with(&format!("On the Provisioning tab, select Edit under SCIM Connection and enter the SCIM connector base URL below. Unique identifier field for users: userName. Authentication Mode: HTTP Header, with {credential} as Authorization."), vec![value("SCIM connector base URL", &url, "tenant-url")]),
            step("Tick Push New Users, Push Profile Updates and Push Groups, then select Test Connector Configuration and Save."),
            step("On Provisioning > To App, enable Create Users, Update User Attributes and Deactivate Users, and select Save."),
            step("Assign users and groups to the app; on Push Groups, push the groups your product maps to organizations."),
        ],
        IdpProfile::OneLogin => vec![
            step("In OneLogin, go to Applications > Applications, select Add App, and choose SCIM Provisioner with SAML (SCIM v2 Enterprise)."),
            step_with(&format!("On the Configuration tab, enter the SCIM Base URL below and {credential} as SCIM Bearer Token."), vec![value("SCIM Base URL", &url, "tenant-url")]),
            step("Under API Connection, select Enable; the status turns to Enabled. Select Save."),
            step("On the Provisioning tab, select Enable provisioning, choose Create user, Delete user and Update user, and select Save."),
        ],
        IdpProfile::JumpCloud => vec![
            step("In the JumpCloud Admin Portal, go to SSO Applications and open your application (or add a Custom SAML App)."),
            step_with(&format!("On the Identity Management tab, choose SCIM 2.0, enter the Base URL below and {credential} as Token Key (authorization type Bearer), and a Test User Email that does not exist."), vec![value("Base URL", &url, "tenant-url")]),
            step("Select Test Connection, then Activate and Save."),
            step("On the User Groups tab, bind the user groups whose members should be provisioned."),
        ],
        IdpProfile::Ping => vec![
            step("PingFederate: create an SP connection for the product (or open the SAML one) and enable Outbound Provisioning with the SCIM Connector. PingOne: go to Integrations > Provisioning and add a SCIM Outbound connection."),
            step_with(&format!("Enter the SCIM URL below, SCIM Version 2.0, authentication OAuth 2 Bearer Token with {credential}, and the user filter userName eq \"%s\"."), vec![value("SCIM URL", &url, "tenant-url")]),
            step("Choose the remove action (disable or delete), map userName, name, emails, displayName and active, and activate the connection."),
        ],
        IdpProfile::Generic => vec![
            step_with(&format!("Give the client the base URL below and {credential} as a bearer token (Authorization: Bearer)."), vec![value("Base URL", &url, "tenant-url")]),
            step("Users and groups live at /Users and /Groups below it; /ServiceProviderConfig, /Schemas and /ResourceTypes describe what is supported."),
            step("Send application/scim+json or application/json bodies."),
        ],
    };
    Guide { name: idp_name(idp), steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_gets_the_compliance_flag_and_the_others_the_plain_url() {
        let scim = "https://scim.example.com/scim/v2/acme";
        for idp in IdpProfile::ALL {
            let guide = guide(idp, scim, "https://scim.example.com/oauth2/acme/token", false);
            let urls: Vec<&str> = guide.steps.iter().flat_map(|s| &s.values).map(|v| v.value.as_str()).collect();
            let expected = if idp == IdpProfile::Entra { format!("{scim}?aadOptscim062020") } else { scim.to_owned() };
            assert_eq!(urls, [expected.as_str()], "{idp:?}");
        }
    }
}
