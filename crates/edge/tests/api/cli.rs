//! The `scimgate` binary as an operator uses it, against the same database as a running gateway.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{assert_scim_error, eventually, TestApp};

both_backends!(
    operator_lifecycle_through_the_cli,
    tokens_with_names_expiry_and_grace_through_the_cli,
    operator_tokens_and_tenant_settings_through_the_cli,
    organizations_mappings_and_memberships_through_the_cli,
    tenant_names_are_validated_with_a_clear_message,
    destructive_commands_ask_for_yes,
    list_commands_print_json_on_request,
    errors_name_the_tenant_and_the_database_once,
    accounts_and_users_through_the_cli,
);

fn scimgate(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(args)
        .env("SCIMGATE_DATABASE_URL", &app.database_url)
        .env("SCIMGATE_PUBLIC_URL", &app.address)
        .env("SCIMGATE_LOG", "warn")
        .output()
        .expect("run scimgate")
}

fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "scimgate succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_rows(output: &Output) -> Vec<Value> {
    let text = stdout(output);
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        .as_array()
        .unwrap()
        .clone()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "scimgate failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap().to_owned()
}

async fn status_with(app: &TestApp, org: &str, token: &str) -> u16 {
    let url = format!("{}/scim/v2/{org}/Users", app.address);
    app.client.get(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Whether the gateway refuses `token` within moments of a change the CLI made: on PostgreSQL
/// it learns of it by a notice as the CLI commits (see docs/deploy.md).
async fn refused_soon(app: &TestApp, org: &str, token: &str) -> bool {
    eventually(Duration::from_secs(5), || async { status_with(app, org, token).await == 401 }).await
}

async fn operator_lifecycle_through_the_cli(app: TestApp) {
    let org = format!("{}-cli", app.org);
    let created = stdout(&scimgate(&app, &["tenant", "create", &org]));
    assert!(created.contains(&format!("{}/scim/v2/{org}", app.address)), "{created}");
    assert!(stdout(&scimgate(&app, &["tenant", "list"])).contains(&org));

    let first = last_line(&scimgate(&app, &["token", "create", &org]));
    assert!(first.starts_with("scimgate_"), "the token is alone on the last line: {first}");
    assert_eq!(status_with(&app, &org, &first).await, 200);

    let second = last_line(&scimgate(&app, &["token", "regenerate", &org]));
    assert_ne!(first, second);
    assert!(refused_soon(&app, &org, &first).await, "regenerate revokes earlier tokens");
    assert_eq!(status_with(&app, &org, &second).await, 200);

    let listing = stdout(&scimgate(&app, &["token", "list", &org]));
    assert_eq!(listing.lines().count(), 3, "header and two tokens: {listing}");
    let secret = second.split('_').nth(2).unwrap();
    assert!(!listing.contains(secret), "listings never show secrets");

    let second_id = second.split('_').nth(1).unwrap();
    stdout(&scimgate(&app, &["token", "revoke", &org, second_id]));
    assert!(refused_soon(&app, &org, &second).await);

    let scoped = last_line(&scimgate(&app, &["token", "create", &org, "--scopes", "groups:read"]));
    let response =
        app.client.get(format!("{}/scim/v2/{org}/Users", app.address)).bearer_auth(&scoped).send().await.unwrap();
    assert_scim_error(response, 403, None).await;

    stdout(&scimgate(&app, &["tenant", "delete", &org, "--yes"]));
    assert!(refused_soon(&app, &org, &scoped).await);
}

async fn tokens_with_names_expiry_and_grace_through_the_cli(app: TestApp) {
    let org = &app.org;
    let output = scimgate(&app, &["token", "create", org, "--name", "Okta", "--expires-in", "30d"]);
    let named = last_line(&output);
    assert!(stdout(&output).contains("expires: "));
    assert_eq!(status_with(&app, org, &named).await, 200);

    let regenerated = last_line(&scimgate(&app, &["token", "regenerate", org, "--grace", "1h"]));
    assert_eq!(status_with(&app, org, &named).await, 200, "earlier tokens work during the grace period");
    assert_eq!(status_with(&app, org, &regenerated).await, 200);
    let listing = stdout(&scimgate(&app, &["token", "list", org]));
    let okta = listing.lines().find(|l| l.contains("\tOkta\t")).unwrap_or_else(|| panic!("{listing}"));
    assert!(okta.contains("\tgrace\t"), "{okta}");

    // Revoking cuts a grace period short.
    stdout(&scimgate(&app, &["token", "revoke", org, named.split('_').nth(1).unwrap()]));
    assert!(refused_soon(&app, org, &named).await);

    for bad in [["--expires-in", "soon"], ["--expires-at", "2001-01-01T00:00:00Z"]] {
        let output = scimgate(&app, &["token", "create", org, bad[0], bad[1]]);
        assert!(!output.status.success());
    }
}

async fn operator_tokens_and_tenant_settings_through_the_cli(app: TestApp) {
    let operator = last_line(&scimgate(&app, &["admin-token", "create", "--name", "deploy"]));
    assert!(operator.starts_with("scimgateadm_"), "{operator}");
    let tenants = format!("{}/admin/v1/tenants", app.address);
    assert_eq!(app.client.get(&tenants).bearer_auth(&operator).send().await.unwrap().status(), 200);
    assert!(stdout(&scimgate(&app, &["admin-token", "list"])).contains("\tdeploy\t"));
    stdout(&scimgate(&app, &["admin-token", "revoke", operator.split('_').nth(1).unwrap()]));
    let refused = eventually(Duration::from_secs(5), || async {
        app.client.get(&tenants).bearer_auth(&operator).send().await.unwrap().status() == 401
    });
    assert!(refused.await);

    let shown = stdout(&scimgate(
        &app,
        &["tenant", "set", &app.org, "--rate-limit-per-second", "75", "--rate-limit-burst", "300"],
    ));
    assert!(shown.contains("75/s, burst 300 (this tenant's own)"), "{shown}");
    let shown = stdout(&scimgate(&app, &["tenant", "set", &app.org, "--default-rate-limit"]));
    assert!(shown.contains("(the default)"), "{shown}");
    assert!(stdout(&scimgate(&app, &["tenant", "show", &app.org])).contains(&format!("/scim/v2/{}", app.org)));
}

async fn organizations_mappings_and_memberships_through_the_cli(app: TestApp) {
    let org = &app.org;
    let shown = stdout(&scimgate(
        &app,
        &["tenant", "set", org, "--idp-profile", "entra", "--default-role", "admin", "--deprovision", "remove"],
    ));
    assert!(shown.contains("IdP profile: entra") && shown.contains("default role: admin"), "{shown}");
    assert!(shown.contains("deprovision: remove"), "{shown}");
    let readiness = stdout(&scimgate(&app, &["readiness", org]));
    assert!(readiness.contains("no group mapping"), "{readiness}");

    stdout(&scimgate(&app, &["org", "create", org, "acme-eng"]));
    stdout(&scimgate(&app, &["mapping", "add", org, "--group", "Engineering", "--org", "acme-eng", "--role", "owner"]));
    let listing = stdout(&scimgate(&app, &["mapping", "list", org]));
    assert!(listing.contains("name:Engineering\tacme-eng\towner"), "{listing}");

    let ann = app.create_user("ann").await["id"].as_str().unwrap().to_owned();
    app.create_group("Engineering", &[&ann]).await;
    let memberships = stdout(&scimgate(&app, &["memberships", org, &ann]));
    assert!(memberships.contains("acme-eng") && memberships.contains("\towner\tactive"), "{memberships}");
    assert!(stdout(&scimgate(&app, &["org", "members", org, "acme-eng"])).contains("ann"));
    assert!(stdout(&scimgate(&app, &["org", "list", org])).contains("acme-eng"));

    let output = scimgate(&app, &["org", "delete", org, "acme-eng", "--yes"]);
    assert!(!output.status.success(), "a group still gives it");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Engineering"));
    let id = listing.lines().nth(1).unwrap().split('\t').next().unwrap().to_owned();
    stdout(&scimgate(&app, &["mapping", "remove", org, &id]));
    stdout(&scimgate(&app, &["org", "delete", org, "acme-eng", "--yes"]));
}

async fn tenant_names_are_validated_with_a_clear_message(app: TestApp) {
    for bad in ["acme_eng", "Acme", "acme-", ""] {
        let output = scimgate(&app, &["tenant", "create", bad]);
        assert!(!output.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("lowercase letters, digits and '-'"), "{stderr}");
    }
    let output = scimgate(&app, &["tenant", "create", &app.org]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    let output = scimgate(&app, &["token", "create", "no-such-tenant"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("tenant not found"));
}

async fn destructive_commands_ask_for_yes(app: TestApp) {
    let refused = stderr(&scimgate(&app, &["tenant", "delete", &app.org]));
    assert!(refused.contains("--yes") && refused.contains(&app.org), "{refused}");
    assert_eq!(status_with(&app, &app.org, &app.token).await, 200, "nothing was deleted");

    stdout(&scimgate(&app, &["org", "create", &app.org, "kept"]));
    assert!(stderr(&scimgate(&app, &["org", "delete", &app.org, "kept"])).contains("--yes"));
    assert!(stdout(&scimgate(&app, &["org", "list", &app.org])).contains("kept"));

    let hook = stdout(&scimgate(&app, &["webhook", "add", &app.org, "http://127.0.0.1:9/hook"]));
    let id = hook.lines().next().unwrap().trim_start_matches("webhook id: ").to_owned();
    assert!(stderr(&scimgate(&app, &["webhook", "remove", &app.org, &id])).contains("--yes"));
    stdout(&scimgate(&app, &["webhook", "remove", &app.org, &id, "--yes"]));

    stdout(&scimgate(&app, &["tenant", "delete", &app.org, "--yes"]));
    assert!(refused_soon(&app, &app.org, &app.token).await);
}

async fn list_commands_print_json_on_request(app: TestApp) {
    let org = &app.org;
    let tenants = json_rows(&scimgate(&app, &["tenant", "list", "--output", "json"]));
    let tenant = tenants.iter().find(|t| t["name"] == org.as_str()).unwrap_or_else(|| panic!("{tenants:?}"));
    assert_eq!(tenant["tenant_url"], format!("{}/scim/v2/{org}", app.address));

    let tokens = json_rows(&scimgate(&app, &["token", "list", org, "--output", "json"]));
    assert_eq!(tokens.len(), 1);
    assert_eq!((tokens[0]["state"].as_str(), tokens[0]["scopes"].as_array().map(Vec::len)), (Some("active"), Some(4)));
    assert_eq!(tokens[0]["id"], app.token.split('_').nth(1).unwrap());
    let secret = app.token.split('_').nth(2).unwrap();
    assert!(!tokens[0].to_string().contains(secret), "never a secret");

    stdout(&scimgate(&app, &["org", "create", org, "eng"]));
    stdout(&scimgate(&app, &["mapping", "add", org, "--group", "Engineering", "--org", "eng"]));
    let orgs = json_rows(&scimgate(&app, &["org", "list", org, "--output", "json"]));
    assert_eq!(orgs[0]["name"], "eng");
    let mappings = json_rows(&scimgate(&app, &["--output", "json", "mapping", "list", org]));
    assert_eq!((mappings[0]["group"].as_str(), mappings[0]["role"].as_str()), (Some("Engineering"), Some("member")));
    let ann = app.create_user("ann").await["id"].as_str().unwrap().to_owned();
    app.create_group("Engineering", &[&ann]).await;
    let memberships = json_rows(&scimgate(&app, &["memberships", org, &ann, "--output", "json"]));
    assert_eq!(
        (memberships[0]["organization"].as_str(), memberships[0]["state"].as_str()),
        (Some("eng"), Some("active"))
    );
    assert_eq!(json_rows(&scimgate(&app, &["org", "members", org, "eng", "--output", "json"]))[0]["user_name"], "ann");
    assert!(json_rows(&scimgate(&app, &["webhook", "list", org, "--output", "json"])).is_empty());
    assert!(json_rows(&scimgate(&app, &["admin-token", "list", "--output", "json"]))
        .iter()
        .all(|t| t["id"].is_string()));
}

async fn errors_name_the_tenant_and_the_database_once(app: TestApp) {
    let shown_url = app.database_url.parse::<domain::DatabaseUrl>().unwrap().to_string();
    let message = stderr(&scimgate(&app, &["token", "create", "no-such-tenant"]));
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("tenant not found") && message.contains("no-such-tenant"), "{message}");
    assert!(message.contains(&shown_url), "names the database: {message}");
    assert_eq!(message.matches("not found").count(), 1, "{message}");

    // A port already taken: the address once, the OS error once.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .arg("serve")
        .env("SCIMGATE_DATABASE_URL", &app.database_url)
        .env("SCIMGATE_LISTEN", &address)
        .env("SCIMGATE_METRICS_LISTEN", "off")
        .env("SCIMGATE_LOG", "warn")
        .output()
        .unwrap();
    let message = stderr(&output);
    assert!(message.contains(&format!("cannot listen on {address}")), "{message}");
    assert_eq!(message.matches("in use").count(), 1, "{message}");

    // The same in JSON: every line on stderr is one JSON object.
    let output = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--log-format", "json"])
        .env("SCIMGATE_DATABASE_URL", &app.database_url)
        .env("SCIMGATE_LISTEN", &address)
        .env("SCIMGATE_METRICS_LISTEN", "off")
        .env("SCIMGATE_SURELY_UNKNOWN", "1")
        .env("SCIMGATE_LOG", "info")
        .output()
        .unwrap();
    let message = stderr(&output);
    for line in message.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(message.contains("SCIMGATE_SURELY_UNKNOWN") && message.contains("in use"), "{message}");
}

#[test]
fn the_cli_never_creates_a_database_it_was_not_asked_to() {
    let dir = std::env::temp_dir().join(format!("scimgate-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .args(args)
            .current_dir(&dir)
            .env("SCIMGATE_DATABASE_URL", "sqlite://scimgate.db")
            .env("SCIMGATE_LOG", "warn")
            .output()
            .unwrap()
    };
    let message = stderr(&run(&["tenant", "list"]));
    assert!(message.contains("no database") && message.contains("scimgate migrate"), "{message}");
    assert!(message.contains(&dir.join("scimgate.db").display().to_string()), "the absolute path: {message}");
    assert!(!dir.join("scimgate.db").exists(), "no empty database was made");

    stdout(&run(&["migrate"]));
    stdout(&run(&["tenant", "create", "acme"]));
    assert!(stdout(&run(&["tenant", "list"])).contains("acme"));
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn accounts_and_users_through_the_cli(app: TestApp) {
    let org = &app.org;
    let shown = stdout(&scimgate(&app, &["tenant", "set", org, "--link-by", "email", "--duplicate-emails", "refuse"]));
    assert!(shown.contains("link by:     email") && shown.contains("duplicate emails: refuse"), "{shown}");
    let added = stdout(&scimgate(&app, &["account", "add", org, "acct-ann", "--email", "Ann@Example.com"]));
    assert!(added.contains("ann@example.com") && added.contains("nobody yet"), "{added}");
    let file = std::env::temp_dir().join(format!("{org}-accounts.jsonl"));
    let lines: Vec<String> = (0..50)
        .map(|i| serde_json::json!({"id": format!("acct-{i}"), "email": format!("u{i}@example.com")}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let imported = stdout(&scimgate(&app, &["account", "import", org, file.to_str().unwrap()]));
    assert!(imported.contains("50 created, 0 updated"), "{imported}");
    std::fs::remove_file(&file).unwrap();

    let body = serde_json::json!({"schemas": [proto::schema::USER], "userName": "ann", "emails": [{"value": "ann@example.com", "type": "work"}]});
    let user = app.create_user_json(body).await;
    let shown = stdout(&scimgate(&app, &["account", "show", org, "acct-ann"]));
    assert!(shown.contains(&format!("linked to:   {} (by email)", user["id"].as_str().unwrap())), "{shown}");
    let line = stdout(&scimgate(&app, &["user", "show", org, "--account", "acct-ann"]));
    let found: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!((found["id"].as_str(), found["scim"]["userName"].as_str()), (user["id"].as_str(), Some("ann")));
    let by_email = stdout(&scimgate(&app, &["user", "show", org, "--email", "ANN@example.com"]));
    assert!(by_email.contains("acct-ann"), "{by_email}");
    assert!(!scimgate(&app, &["user", "show", org, "--email", "nobody@example.com"]).status.success());
    let report: serde_json::Value = serde_json::from_str(&stdout(&scimgate(&app, &["readiness", org]))).unwrap();
    assert_eq!(report["settings"]["duplicate_emails"], "refuse", "{report}");
    assert!(stdout(&scimgate(&app, &["account", "remove", org, "acct-ann"])).contains("removed"));
}
