//! Setup links, the setup portal and the operator console, over real HTTP: every page and form,
//! and the security properties around them.

use domain::{
    now_micros, ActivityCredential, ActivityMethod, ActivityRecord, ActivityResource, ActivityStore, NewActivity,
    NewPortalLink, PortalStore, SecretDigest, TenantName, TenantStore,
};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{admin_json, spawn_app_with, TestApp};

both_backends!(
    setup_links_are_issued_listed_and_revoked_through_the_admin_api,
    a_setup_link_opens_a_session_for_its_tenant_once,
    expired_revoked_and_forged_links_are_refused,
    a_link_for_one_tenant_never_reaches_another,
    forms_without_the_session_token_or_from_another_site_are_refused,
    every_page_is_sent_with_the_security_headers,
    the_portal_shows_the_idp_steps_and_a_credential_once,
    regenerating_keeps_earlier_tokens_for_the_grace_period,
    oauth_tenants_get_an_oauth_client_secret,
    the_portal_shows_rules_and_which_groups_gave_which_organizations,
    a_portal_session_never_opens_the_console,
    operators_sign_in_to_the_console_and_manage_a_tenant,
    the_console_shows_dead_letters_and_redelivers_them,
    signing_out_ends_the_session,
    setup_links_through_the_cli,
    the_activity_is_shown_and_filtered_by_outcome,
);

/// A browser's view of one area: the session cookie, once signed in.
pub struct WebClient<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
}

impl<'a> WebClient<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.app.client.request(method, format!("{}{path}", self.app.address));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        request
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// GET a page; its status and HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
        (status, response.text().await.unwrap())
    }

    /// POST a form as a browser on this site does (with `Origin`).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_from(path, fields, Some(&self.app.address)).await
    }

    pub async fn post_from(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Response {
        let mut request = self
            .request(Method::POST, path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.unwrap()
    }

    /// POST a form of a signed-in page, with the session's CSRF token read from `page`.
    pub async fn submit(&self, page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let (status, html) = self.page(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        let csrf = csrf_of(&html);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no form token in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The value of the read-only field `id` in a page (a Tenant URL, a new secret).
pub fn field_value(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\" type=\"text\" readonly value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next().unwrap().replace("&amp;", "&").replace("&#x3f;", "?"))
}

/// Issue a setup link for `org` through the admin API; its URL.
pub async fn issue_link(app: &TestApp, org: &str, expires_in: Option<&str>) -> Value {
    let body = expires_in.map(|e| json!({"expires_in": e})).unwrap_or(json!({}));
    let response = app.admin(Method::POST, &format!("/tenants/{org}/portal-links"), Some(&body)).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, link) = admin_json(response).await;
    assert_eq!(status, 201, "{link}");
    link
}

/// The path of a setup link's URL.
fn link_path(app: &TestApp, link: &Value) -> String {
    link["url"].as_str().unwrap().strip_prefix(&app.address).unwrap().to_owned()
}

/// Open a setup link as the IT admin: a portal session for its tenant.
pub async fn open_portal<'a>(app: &'a TestApp, org: &str) -> WebClient<'a> {
    let link = issue_link(app, org, None).await;
    let mut client = WebClient::new(app);
    let path = link_path(app, &link);
    let (status, html) = client.page(&path).await;
    assert_eq!(status, 200, "{html}");
    let response = client.post(&path, &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/portal");
    client.cookie = Some(session_cookie(&response));
    client
}

/// Sign in to the console with the app's operator token.
pub async fn sign_in_console(app: &TestApp) -> WebClient<'_> {
    let mut client = WebClient::new(app);
    let response = client.post("/console/sign-in", &[("token", &app.operator_token)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/console");
    client.cookie = Some(session_cookie(&response));
    client
}

/// The `name=value` of the session cookie a response sets.
fn session_cookie(response: &Response) -> String {
    let set = response.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn setup_links_are_issued_listed_and_revoked_through_the_admin_api(app: TestApp) {
    let link = issue_link(&app, &app.org, Some("2d")).await;
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/portal/setup/{}.", app.address, link["id"].as_str().unwrap())), "{url}");
    let secret = url.rsplit('.').next().unwrap();
    assert!(secret.len() >= 43, "at least 256 bits: {secret}");
    assert_eq!(link["state"], "unused");

    let path = format!("/tenants/{}/portal-links", app.org);
    let (status, listed) = admin_json(app.admin(Method::GET, &path, None).await).await;
    assert_eq!(status, 200);
    assert_eq!(listed["links"][0]["id"], link["id"]);
    assert!(listed["links"][0].get("url").is_none());
    assert!(!listed.to_string().contains(secret), "listings never show the secret");

    let id = link["id"].as_str().unwrap();
    let (status, _) = admin_json(app.admin(Method::DELETE, &format!("{path}/{id}"), None).await).await;
    assert_eq!(status, 204);
    let (_, listed) = admin_json(app.admin(Method::GET, &path, None).await).await;
    assert_eq!(listed["links"][0]["state"], "revoked");
    assert!(listed["links"][0]["revoked"].is_string());

    for (body, status) in [
        (json!({"expires_in": "soon"}), 400),
        (json!({"expires_in": "90d"}), 400),
        (json!({"expires_at": "2030-01-01T00:00:00Z"}), 400),
    ] {
        let (got, problem) = admin_json(app.admin(Method::POST, &path, Some(&body)).await).await;
        assert_eq!(got, status, "{body}: {problem}");
    }
    let (status, _) = admin_json(app.admin(Method::POST, "/tenants/nobody-here/portal-links", None).await).await;
    assert_eq!(status, 404);
    let (status, _) = admin_json(app.admin(Method::DELETE, &format!("{path}/no-such-link"), None).await).await;
    assert_eq!(status, 404);
    let anonymous = app.client.get(format!("{}/admin/v1{path}", app.address)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn a_setup_link_opens_a_session_for_its_tenant_once(app: TestApp) {
    let link = issue_link(&app, &app.org, None).await;
    let path = link_path(&app, &link);
    let mut client = WebClient::new(&app);

    // Opening shows what the link is for and uses nothing: a mail scanner may fetch it.
    for _ in 0..2 {
        let (status, html) = client.page(&path).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&app.org), "{html}");
    }
    let response = client.post(&path, &[]).await;
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/portal"] {
        assert!(set_cookie.contains(flag), "{flag} missing from {set_cookie}");
    }
    client.cookie = Some(session_cookie(&response));
    let (status, html) = client.page("/portal").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("{}/scim/v2/{}", app.address, app.org)), "{html}");

    // Once only.
    let again = WebClient::new(&app);
    assert_eq!(again.post(&path, &[]).await.status(), 410);
    let (status, html) = again.page(&path).await;
    assert_eq!(status, 410);
    assert!(html.contains("was used already"), "{html}");
    let (_, listed) =
        admin_json(app.admin(Method::GET, &format!("/tenants/{}/portal-links", app.org), None).await).await;
    assert_eq!(listed["links"][0]["state"], "used");

    // Without a session, the portal says how to get one.
    let (status, html) = WebClient::new(&app).page("/portal").await;
    assert_eq!(status, 401);
    assert!(html.contains("setup link"), "{html}");
}

async fn expired_revoked_and_forged_links_are_refused(app: TestApp) {
    // Expired: stored with an expiry in the past.
    let tenant = TenantName::parse(&app.org).unwrap();
    let secret = edge::setup_links::random_secret();
    let id = edge::setup_links::random_id();
    let expired = NewPortalLink { id: id.clone(), digest: SecretDigest::of(&secret), expires_at: now_micros() - 1 };
    app.store.add_portal_link(&tenant, expired).await.unwrap();
    let client = WebClient::new(&app);
    let path = format!("/portal/setup/{id}.{secret}");
    let (status, html) = client.page(&path).await;
    assert_eq!((status, html.contains("has expired")), (410, true), "{html}");
    assert_eq!(client.post(&path, &[]).await.status(), 410);

    let link = issue_link(&app, &app.org, None).await;
    let path = link_path(&app, &link);
    let revoke = format!("/tenants/{}/portal-links/{}", app.org, link["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &revoke, None).await.status(), 204);
    let (status, html) = client.page(&path).await;
    assert_eq!((status, html.contains("was revoked")), (410, true), "{html}");
    assert_eq!(client.post(&path, &[]).await.status(), 410);

    // A wrong secret for a real id, and garbage, are simply not found.
    let link = issue_link(&app, &app.org, None).await;
    let path = link_path(&app, &link);
    let last = path.chars().last().unwrap();
    let forged = format!("{}{}", &path[..path.len() - 1], if last == 'A' { 'B' } else { 'A' });
    for path in [forged.as_str(), "/portal/setup/nothing", "/portal/setup/x.y"] {
        assert_eq!(client.page(path).await.0, 404, "{path}");
        assert_eq!(client.post(path, &[]).await.status(), 404, "{path}");
    }
    // The forgeries used nothing up.
    assert_eq!(client.page(&path).await.0, 200);
}

async fn a_link_for_one_tenant_never_reaches_another(app: TestApp) {
    let other = format!("{}-b", app.org);
    crate::helpers::issue_token(&app.store, &other, token::Scopes::all()).await;
    let client = open_portal(&app, &app.org).await;

    for page in ["/portal", "/portal/steps", "/portal/credential", "/portal/organizations"] {
        let (status, html) = client.page(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        assert!(!html.contains(&other), "{page} shows the other tenant: {html}");
    }
    // Choosing an IdP changes this tenant only.
    let response = client.submit("/portal", "/portal/idp", &[("idp", "okta")]).await;
    assert_eq!(response.status(), 303);
    let tenant = |name: &str| {
        let name = TenantName::parse(name).unwrap();
        let store = app.store.clone();
        async move { store.tenant(&name).await.unwrap().settings.idp_profile }
    };
    assert_eq!(tenant(&app.org).await, proto::IdpProfile::Okta);
    assert_eq!(tenant(&other).await, proto::IdpProfile::Generic);
    // A credential made here works for this tenant alone.
    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "1h")]).await;
    let html = response.text().await.unwrap();
    let secret = field_value(&html, "secret").unwrap();
    let users = |org: &str| format!("{}/scim/v2/{org}/Users", app.address);
    assert_eq!(app.client.get(users(&app.org)).bearer_auth(&secret).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(users(&other)).bearer_auth(&secret).send().await.unwrap().status(), 401);
}

/// A form's fields, the `Origin` it is sent with, and what is wrong with it.
type FormCase<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);

async fn forms_without_the_session_token_or_from_another_site_are_refused(app: TestApp) {
    let client = open_portal(&app, &app.org).await;
    let (_, html) = client.page("/portal").await;
    let csrf = csrf_of(&html);
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    let cases: [FormCase; 4] = [
        (&[("idp", "entra")], Some(app.address.as_str()), "missing token"),
        (&[("csrf", &wrong), ("idp", "entra")], Some(app.address.as_str()), "wrong token"),
        (&[("csrf", &csrf), ("idp", "entra")], Some("https://evil.example"), "foreign origin"),
        (&[("csrf", &csrf), ("idp", "entra")], None, "no origin"),
    ];
    for (fields, origin, case) in cases {
        let response = client.post_from("/portal/idp", fields, origin).await;
        assert_eq!(response.status(), 403, "{case}");
        assert!(response.text().await.unwrap().contains("not sent from this site"), "{case}");
    }
    // A browser that says the request is cross-site is refused, whatever its Origin says.
    let response = client
        .request(Method::POST, "/portal/idp")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", &app.address)
        .header("sec-fetch-site", "cross-site")
        .body(format!("csrf={csrf}&idp=entra"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let tenant = app.store.tenant(&TenantName::parse(&app.org).unwrap()).await.unwrap();
    assert_eq!(tenant.settings.idp_profile, proto::IdpProfile::Generic, "nothing changed");

    // What Chromium sends from a no-referrer page: `Origin: null` and `Sec-Fetch-Site`.
    let response = client
        .request(Method::POST, "/portal/idp")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .body(format!("csrf={csrf}&idp=entra"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // The console's sign-in and a setup link's form check the origin too.
    let link = issue_link(&app, &app.org, None).await;
    let path = link_path(&app, &link);
    assert_eq!(WebClient::new(&app).post_from(&path, &[], Some("https://evil.example")).await.status(), 403);
    let token = [("token", app.operator_token.as_str())];
    let response = WebClient::new(&app).post_from("/console/sign-in", &token, Some("https://evil.example")).await;
    assert_eq!(response.status(), 403);
    // Bad form bodies are the client's mistake.
    let response = client.post("/portal/idp", &[("csrf", &csrf), ("idp", "myspace")]).await;
    assert_eq!(response.status(), 400);
}

async fn every_page_is_sent_with_the_security_headers(app: TestApp) {
    let portal = open_portal(&app, &app.org).await;
    let console = sign_in_console(&app).await;
    let link = issue_link(&app, &app.org, None).await;
    let pages = [
        (&portal, "/portal".to_owned(), 200),
        (&portal, "/portal/steps".to_owned(), 200),
        (&portal, "/portal/credential".to_owned(), 200),
        (&portal, "/portal/organizations".to_owned(), 200),
        (&portal, "/portal/nothing-here".to_owned(), 404),
        (&portal, link_path(&app, &link), 200),
        (&console, "/console".to_owned(), 200),
        (&console, format!("/console/tenants/{}", app.org), 200),
        (&console, "/console/tenants/nobody-here".to_owned(), 404),
        (&WebClient::new(&app), "/console/sign-in".to_owned(), 200),
    ];
    for (client, path, status) in pages {
        let response = client.get(&path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{path}");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="), "{path}: no inline script or style");
    }
    // The assets are served by the gateway itself.
    for path in ["/portal/assets/app.css", "/portal/assets/app.js", "/console/assets/app.css"] {
        let response = portal.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    assert_eq!(portal.get("/portal/assets/secret.txt").await.status(), 404);
}

async fn the_portal_shows_the_idp_steps_and_a_credential_once(app: TestApp) {
    let client = open_portal(&app, &app.org).await;
    let (_, html) = client.page("/portal").await;
    for idp in ["Microsoft Entra ID", "Okta", "OneLogin", "JumpCloud", "Ping Identity", "Another SCIM 2.0 client"] {
        assert!(html.contains(idp), "{idp}: {html}");
    }
    assert!(html.contains("Readiness"), "{html}");

    let response = client.submit("/portal", "/portal/idp", &[("idp", "entra")]).await;
    assert_eq!((response.status().as_u16(), &response.headers()[LOCATION]), (303, &"/portal/steps".parse().unwrap()));
    let tenant_url = format!("{}/scim/v2/{}?aadOptscim062020", app.address, app.org);
    let (status, html) = client.page("/portal/steps").await;
    assert_eq!(status, 200);
    assert_eq!(field_value(&html, "tenant-url").as_deref(), Some(tenant_url.as_str()), "{html}");
    assert!(html.contains("Microsoft Entra ID"), "{html}");
    let (_, overview) = client.page("/portal").await;
    assert!(overview.contains("id=\"idp-entra\" value=\"entra\" checked"), "{overview}");

    // Each IdP gets its own steps with the plain Tenant URL.
    let plain = format!("{}/scim/v2/{}", app.address, app.org);
    for idp in ["okta", "onelogin", "jumpcloud", "ping", "generic"] {
        client.submit("/portal", "/portal/idp", &[("idp", idp)]).await;
        let (_, html) = client.page("/portal/steps").await;
        assert_eq!(field_value(&html, "tenant-url").as_deref(), Some(plain.as_str()), "{idp}: {html}");
    }

    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "0s")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    let token = field_value(&html, "secret").unwrap();
    assert!(token.starts_with("scimgate_"), "{html}");
    assert!(html.contains("shown only this once"), "{html}");
    let users = format!("{}/scim/v2/{}/Users", app.address, app.org);
    assert_eq!(app.client.get(&users).bearer_auth(&token).send().await.unwrap().status(), 200);

    // After the reveal, no page shows it again.
    for page in ["/portal", "/portal/steps", "/portal/credential", "/portal/organizations"] {
        let (_, html) = client.page(page).await;
        assert!(!html.contains(&token), "{page} shows the secret again");
        assert!(!html.contains(token.split('_').nth(2).unwrap()), "{page} shows part of the secret");
    }
    let (_, html) = client.page("/portal/credential").await;
    assert!(html.contains("setup portal") && html.contains("active"), "the token is listed: {html}");
}

async fn regenerating_keeps_earlier_tokens_for_the_grace_period(app: TestApp) {
    let client = open_portal(&app, &app.org).await;
    let generate = |grace: &'static str| {
        let client = &client;
        async move {
            let response = client.submit("/portal/credential", "/portal/credential", &[("grace", grace)]).await;
            field_value(&response.text().await.unwrap(), "secret").unwrap()
        }
    };
    let first = generate("0s").await;
    assert_eq!(app.status_with(&app.token).await, 401, "the first generation replaces the operator's token");
    let second = generate("1h").await;
    assert_eq!(app.status_with(&first).await, 200, "within the grace period");
    assert_eq!(app.status_with(&second).await, 200);
    let third = generate("0s").await;
    assert_eq!((app.status_with(&first).await, app.status_with(&second).await), (401, 401));
    assert_eq!(app.status_with(&third).await, 200);

    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "90d")]).await;
    assert_eq!(response.status(), 400, "grace is at most 30 days");
    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "a while")]).await;
    assert_eq!(response.status(), 400);
}

async fn oauth_tenants_get_an_oauth_client_secret(app: TestApp) {
    let body = json!({"auth_methods": "oauth"});
    assert_eq!(app.admin(Method::PATCH, &format!("/tenants/{}", app.org), Some(&body)).await.status(), 200);
    let client = open_portal(&app, &app.org).await;
    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "0s")]).await;
    let html = response.text().await.unwrap();
    let client_id = field_value(&html, "client-id").unwrap();
    let secret = field_value(&html, "secret").unwrap();
    let token_url = format!("{}/oauth2/{}/token", app.address, app.org);
    assert_eq!(field_value(&html, "token-url").as_deref(), Some(token_url.as_str()));

    // The client works: an access token, then SCIM with it.
    let response = app
        .client
        .post(&token_url)
        .basic_auth(&client_id, Some(&secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let access: Value = response.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap();
    assert_eq!(app.status_with(access).await, 200);

    // Regenerating rotates its secret, keeping the client id.
    let response = client.submit("/portal/credential", "/portal/credential", &[("grace", "0s")]).await;
    let html = response.text().await.unwrap();
    assert_eq!(field_value(&html, "client-id"), Some(client_id));
    assert_ne!(field_value(&html, "secret"), Some(secret.clone()));
    let (_, page) = client.page("/portal/credential").await;
    assert!(!page.contains(&secret) && page.contains("OAuth client"), "{page}");
}

async fn the_portal_shows_rules_and_which_groups_gave_which_organizations(app: TestApp) {
    let path = format!("/tenants/{}", app.org);
    assert_eq!(app.admin(Method::PATCH, &path, Some(&json!({"autoprovision": true}))).await.status(), 200);
    let organization = json!({"name": "platform"});
    let (status, _) =
        admin_json(app.admin(Method::POST, &format!("{path}/organizations"), Some(&organization)).await).await;
    assert_eq!(status, 201);
    let rule = json!({"group": "Engineering", "organization": "platform", "role": "admin"});
    let (status, body) = admin_json(app.admin(Method::POST, &format!("{path}/mappings"), Some(&rule)).await).await;
    assert_eq!(status, 201, "{body}");
    app.create_group("Engineering", &[]).await;
    app.create_group("Sales Team", &[]).await;

    let client = open_portal(&app, &app.org).await;
    let (status, html) = client.page("/portal/organizations").await;
    assert_eq!(status, 200);
    assert!(html.contains("groups named engineering") || html.contains("groups named Engineering"), "{html}");
    let row = |group: &str, org: &str, role: &str, created: &str| {
        format!("<tr><td>{group}</td><td>{org}</td><td>{role}</td><td>{created}</td></tr>")
    };
    assert!(html.contains(&row("Engineering", "platform", "admin", "no")), "{html}");
    assert!(html.contains(&row("Sales Team", "sales-team", "member", "yes")), "{html}");
}

async fn a_portal_session_never_opens_the_console(app: TestApp) {
    let portal = open_portal(&app, &app.org).await;
    let value = portal.cookie.clone().unwrap().split_once('=').unwrap().1.to_owned();
    // The cookie is not sent to /console; pasted under the console's name, it is still refused.
    let forged = WebClient { app: &app, cookie: Some(format!("scimgate_console={value}")) };
    for path in ["/console", &format!("/console/tenants/{}", app.org)] {
        let response = forged.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()[LOCATION], "/console/sign-in");
    }
    let response = forged.post("/console/tenants", &[("name", "sneaky")]).await;
    assert_eq!(response.status(), 303);
    assert!(app.store.tenant(&TenantName::parse("sneaky").unwrap()).await.is_err());
    // And the console needs signing in at all.
    let response = WebClient::new(&app).get("/console").await;
    assert_eq!(
        (response.status().as_u16(), &response.headers()[LOCATION]),
        (303, &"/console/sign-in".parse().unwrap())
    );
    // A console session is no portal session either.
    let console = sign_in_console(&app).await;
    let value = console.cookie.clone().unwrap().split_once('=').unwrap().1.to_owned();
    let forged = WebClient { app: &app, cookie: Some(format!("scimgate_portal={value}")) };
    assert_eq!(forged.page("/portal").await.0, 401);
}

async fn operators_sign_in_to_the_console_and_manage_a_tenant(app: TestApp) {
    let (status, html) = WebClient::new(&app).page("/console/sign-in").await;
    assert_eq!(status, 200);
    assert!(html.contains("<label for=\"token\">"), "{html}");
    let response = WebClient::new(&app).post("/console/sign-in", &[("token", "scimgateadm_nope")]).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get(SET_COOKIE).is_none());
    let tenant_token = [("token", app.token.as_str())];
    assert_eq!(WebClient::new(&app).post("/console/sign-in", &tenant_token).await.status(), 401);

    let console = sign_in_console(&app).await;
    let (status, html) = console.page("/console").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("href=\"/console/tenants/{}\"", app.org)), "{html}");

    // Create a tenant.
    let org = format!("{}-new", app.org);
    let response = console.submit("/console", "/console/tenants", &[("name", &org)]).await;
    assert_eq!(response.status(), 303);
    let tenant_page = format!("/console/tenants/{org}");
    assert_eq!(response.headers()[LOCATION], tenant_page.as_str());
    assert_eq!(console.submit("/console", "/console/tenants", &[("name", "Not A Name")]).await.status(), 400);
    assert_eq!(console.submit("/console", "/console/tenants", &[("name", &org)]).await.status(), 409);

    // Issue a setup link: shown once, and it works.
    let response = console.submit(&tenant_page, &format!("{tenant_page}/portal-links"), &[("expires_in", "1d")]).await;
    assert_eq!(response.status(), 200);
    let url = field_value(&response.text().await.unwrap(), "secret").unwrap();
    let path = url.strip_prefix(&app.address).unwrap().to_owned();
    let (status, html) = WebClient::new(&app).page(&path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&org));
    let (_, html) = console.page(&tenant_page).await;
    assert!(!html.contains(url.rsplit('.').next().unwrap()), "the link's secret is not shown again");
    assert!(html.contains(">unused<"), "{html}");

    // Revoke it.
    let (_, listed) = admin_json(app.admin(Method::GET, &format!("/tenants/{org}/portal-links"), None).await).await;
    let id = listed["links"][0]["id"].as_str().unwrap().to_owned();
    let response = console.submit(&tenant_page, &format!("{tenant_page}/portal-links/{id}/revoke"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(WebClient::new(&app).page(&path).await.0, 410);

    // Tokens: create (shown once), listed, revoked.
    let response = console.submit(&tenant_page, &format!("{tenant_page}/tokens"), &[]).await;
    let token = field_value(&response.text().await.unwrap(), "secret").unwrap();
    let users = format!("{}/scim/v2/{org}/Users", app.address);
    assert_eq!(app.client.get(&users).bearer_auth(&token).send().await.unwrap().status(), 200);
    let (_, html) = console.page(&tenant_page).await;
    assert!(!html.contains(&token));
    let id = token.split('_').nth(1).unwrap();
    assert!(html.contains(id), "{html}");
    let response = console.submit(&tenant_page, &format!("{tenant_page}/tokens/{id}/revoke"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.client.get(&users).bearer_auth(&token).send().await.unwrap().status(), 401);
    let response = console.submit(&tenant_page, &format!("{tenant_page}/tokens/nonsense/revoke"), &[]).await;
    assert_eq!(response.status(), 404);

    // The tenant list shows its state and when its IdP last called.
    let (_, html) = console.page("/console").await;
    assert!(html.contains(&org) && html.contains("needs attention"), "{html}");
}

async fn the_console_shows_dead_letters_and_redelivers_them(app: TestApp) {
    let app = app
        .spawn_replica(|s| {
            s.webhook_max_attempts = 1;
            s.webhook_poll_ms = 50;
        })
        .await;
    // A receiver that is never there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}/hook");
    let path = format!("/tenants/{}/webhooks", app.org);
    let (status, hook) = admin_json(app.admin(Method::POST, &path, Some(&json!({"url": url}))).await).await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_owned();
    app.create_user("ann").await;

    let console = sign_in_console(&app).await;
    let tenant_page = format!("/console/tenants/{}", app.org);
    let dead = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        console.page(&tenant_page).await.1.contains("Redeliver the dead letters")
    })
    .await;
    assert!(dead, "{}", console.page(&tenant_page).await.1);
    let (_, html) = console.page(&tenant_page).await;
    assert!(html.contains(&url) && html.contains("user.created"), "{html}");

    // Paused, so that the redelivery asked for stays visible (no attempt fails it again).
    let pause = json!({"enabled": false});
    assert_eq!(app.admin(Method::PATCH, &format!("{path}/{id}"), Some(&pause)).await.status(), 200);
    let response = console.submit(&tenant_page, &format!("{tenant_page}/webhooks/{id}/redeliver"), &[]).await;
    assert_eq!(response.status(), 303);
    let (status, letters) = admin_json(app.admin(Method::GET, &format!("{path}/{id}/dead-letters"), None).await).await;
    assert_eq!(status, 200);
    let letters = letters["dead_letters"].as_array().unwrap().clone();
    assert!(!letters.is_empty() && letters.iter().all(|d| d["redelivery_requested"].is_string()), "{letters:?}");
    let (_, html) = console.page(&tenant_page).await;
    assert!(html.contains("Disabled") && html.contains("<td>requested</td>"), "{html}");
    let response = console.submit(&tenant_page, &format!("{tenant_page}/webhooks/nothing/redeliver"), &[]).await;
    assert_eq!(response.status(), 404);
}

async fn signing_out_ends_the_session(app: TestApp) {
    let portal = open_portal(&app, &app.org).await;
    let response = portal.submit("/portal", "/portal/sign-out", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(portal.page("/portal").await.0, 401, "the old cookie is worth nothing");

    let console = sign_in_console(&app).await;
    assert_eq!(console.submit("/console", "/console/sign-out", &[]).await.status(), 200);
    assert_eq!(console.get("/console").await.status(), 303);

    // A console session ends with its operator token.
    let console = sign_in_console(&app).await;
    let id = app.operator_token.split('_').nth(1).unwrap();
    assert_eq!(app.admin(Method::GET, "/tenants", None).await.status(), 200);
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"));
    let output = cli
        .args(["admin-token", "revoke", id])
        .env("SCIMGATE_DATABASE_URL", &app.database_url)
        .env("SCIMGATE_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(console.get("/console").await.status(), 303);
}

async fn setup_links_through_the_cli(app: TestApp) {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .args(args)
            .env("SCIMGATE_DATABASE_URL", &app.database_url)
            .env("SCIMGATE_PUBLIC_URL", &app.address)
            .env("SCIMGATE_LOG", "warn")
            .output()
            .unwrap()
    };
    let output = run(&["portal-link", &app.org, "--expires-in", "2d"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let url = stdout.lines().last().unwrap();
    assert!(url.starts_with(&format!("{}/portal/setup/", app.address)), "the URL alone on the last line: {stdout}");
    let path = url.strip_prefix(&app.address).unwrap();
    assert_eq!(WebClient::new(&app).page(path).await.0, 200);

    let output = run(&["portal-link", &app.org, "--list"]);
    let listing = String::from_utf8(output.stdout).unwrap();
    let secret = url.rsplit('.').next().unwrap();
    assert!(listing.contains("unused") && !listing.contains(secret), "{listing}");
    let id = url.rsplit('/').next().unwrap().split('.').next().unwrap();
    let output = run(&["--output", "json", "portal-link", &app.org, "--list"]);
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows[0]["id"], id);

    assert!(run(&["portal-link", &app.org, "--revoke", id]).status.success());
    assert_eq!(WebClient::new(&app).page(path).await.0, 410);
    let output = run(&["portal-link", &app.org, "--expires-in", "60d"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most"), "{}", String::from_utf8_lossy(&output.stderr));
    let output = run(&["portal-link", "no-such-tenant"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
}

/// The switches: an area turned off is not there at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_areas_are_not_served() {
    for backend in [domain::testing::Backend::Sqlite, domain::testing::Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |s| {
            s.portal = false;
            s.console = false;
        })
        .await
        else {
            continue;
        };
        let link = issue_link(&app, &app.org, None).await;
        let client = WebClient::new(&app);
        for path in ["/portal", "/portal/steps", "/console", "/console/sign-in", &link_path(&app, &link)] {
            let response = client.get(path).await;
            assert_eq!(response.status(), 404, "{path}");
        }
        assert_eq!(client.post("/console/sign-in", &[("token", &app.operator_token)]).await.status(), 404);
        // The other switched on, alone.
        let app = app.spawn_replica(|s| s.console = true).await;
        assert_eq!(WebClient::new(&app).get("/console/sign-in").await.status(), 200);
        assert_eq!(WebClient::new(&app).get("/portal").await.status(), 404);
    }
}

/// Records as the activity recorder appends them.
async fn record_activity(app: &TestApp, org: &str, status: u16, detail: Option<&str>) {
    let record = ActivityRecord {
        at: now_micros(),
        method: ActivityMethod::Post,
        resource_type: ActivityResource::User,
        resource_id: None,
        status,
        scim_type: detail.map(|_| "uniqueness".to_owned()),
        detail: detail.map(str::to_owned),
        latency_us: 2500,
        idp: Some(proto::IdpProfile::Entra),
        credential: Some(ActivityCredential::Token(token::TokenId::parse("abcdefghijklmnop").unwrap())),
    };
    let batch = [NewActivity { tenant: TenantName::parse(org).unwrap(), record }];
    assert_eq!(app.store.append_activity(&batch).await.unwrap(), 1);
}

async fn the_activity_is_shown_and_filtered_by_outcome(app: TestApp) {
    let other = format!("{}-b", app.org);
    crate::helpers::issue_token(&app.store, &other, token::Scopes::all()).await;
    record_activity(&app, &app.org, 201, None).await;
    record_activity(&app, &app.org, 409, Some("userName ada is taken")).await;
    record_activity(&app, &other, 500, Some("the other tenant failed")).await;

    let portal = open_portal(&app, &app.org).await;
    let (status, html) = portal.page("/portal/activity").await;
    assert_eq!(status, 200);
    assert!(html.contains("<td>201</td>") && html.contains("<td>409</td>"), "{html}");
    assert!(html.contains("userName ada is taken") && html.contains("Microsoft Entra ID"), "{html}");
    assert!(!html.contains("the other tenant"), "{html}");
    let (_, refused) = portal.page("/portal/activity?outcome=client_error").await;
    assert!(refused.contains("<td>409</td>") && !refused.contains("<td>201</td>"), "{refused}");
    assert!(refused.contains("value=\"client_error\" selected"), "{refused}");
    let (_, failed) = portal.page("/portal/activity?outcome=server_error").await;
    assert!(failed.contains("No request recorded with this outcome"), "{failed}");
    assert_eq!(portal.page("/portal/activity?outcome=bad").await.0, 400);
    assert_eq!(portal.page("/portal/activity?cursor=nonsense").await.0, 400);

    let console = sign_in_console(&app).await;
    let (status, html) = console.page(&format!("/console/tenants/{other}/activity?outcome=server_error")).await;
    assert_eq!(status, 200);
    assert!(html.contains("the other tenant failed"), "{html}");
    // The tenant list's last activity is the latest recorded request.
    let (_, home) = console.page("/console").await;
    let row = home.split(&format!("href=\"/console/tenants/{other}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(!row.ends_with("<td>-</td>"), "{row}");
}
