//! The setup portal and the operator console in a real browser: headless Chromium driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`, installed by `scripts/setup-browser.sh`).
//! Each page visited is saved as a screenshot under `target/browser/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::portal::issue_link;

both_backends!(an_it_admin_sets_up_entra_and_an_operator_issues_a_link_in_a_browser);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// WebDriver's key codes.
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";
const ARROW_DOWN: &str = "\u{e015}";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    port: u16,
    child: Child,
}

impl Driver {
    /// `None` (with a message) when the browser is not installed, outside CI.
    fn start() -> Option<Self> {
        let installed = [CHROMEDRIVER, CHROMIUM].iter().all(|p| PathBuf::from(p).exists());
        if !installed {
            assert!(!in_ci(), "{CHROMIUM} and {CHROMEDRIVER} are required when CI=true: scripts/setup-browser.sh");
            eprintln!("SKIPPED: no {CHROMIUM} or {CHROMEDRIVER}; scripts/setup-browser.sh installs them");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { port, child })
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        let args =
            ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"];
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("open a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves a screenshot of each page visited, numbered in order.
struct Screenshots {
    dir: PathBuf,
    prefix: String,
    count: u32,
}

impl Screenshots {
    fn new(prefix: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, prefix: prefix.to_owned(), count: 0 }
    }

    async fn take(&mut self, browser: &Client, name: &str) {
        self.count += 1;
        let png = browser.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{}-{:02}-{name}.png", self.prefix, self.count)), png).unwrap();
    }
}

/// How long a page may take to replace the one before it after a click: a click that submits a
/// form can return before the browser has the answer.
const PAGE_LOAD: Duration = Duration::from_secs(15);

/// The element, once the page shows it.
async fn find(browser: &Client, locator: Locator<'_>) -> Element {
    match browser.wait().at_most(PAGE_LOAD).for_element(locator).await {
        Ok(element) => element,
        Err(e) => {
            let url = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let text = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default();
            panic!("{locator:?} on {url}: {e}\n{text}")
        }
    }
}

/// Wait until the browser is at `path`.
async fn arrive(browser: &Client, path: &str) {
    let deadline = Instant::now() + PAGE_LOAD;
    loop {
        let now = browser.current_url().await.unwrap();
        if now.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "expected to arrive at {path}, still at {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn value_of(browser: &Client, id: &str) -> String {
    find(browser, Locator::Id(id)).await.prop("value").await.unwrap().unwrap_or_default()
}

/// What has the keyboard focus: its id, or its text.
async fn focused(browser: &Client) -> String {
    let script =
        "const e = document.activeElement; return e.id || e.getAttribute('aria-label') || e.textContent.trim();";
    browser.execute(script, vec![]).await.unwrap().as_str().unwrap_or_default().to_owned()
}

/// Press Tab until `target` has the focus; every control passed on the way.
async fn tab_to(browser: &Client, target: &str) -> Vec<String> {
    let mut passed = Vec::new();
    for _ in 0..30 {
        browser.active_element().await.unwrap().send_keys(TAB).await.unwrap();
        let now = focused(browser).await;
        passed.push(now.clone());
        if now == target {
            return passed;
        }
    }
    panic!("{target} is not reachable with the keyboard; Tab went through {passed:?}");
}

async fn an_it_admin_sets_up_entra_and_an_operator_issues_a_link_in_a_browser(app: TestApp) {
    let Some(driver) = Driver::start() else { return };
    let browser = driver.browser().await;
    let backend = if app.database_url.starts_with("sqlite") { "sqlite" } else { "postgres" };
    let mut shots = Screenshots::new(backend);
    // `localhost` is a secure context: the browser keeps `Secure` cookies and offers the clipboard.
    let site = app.address.replace("127.0.0.1", "localhost");

    // The IT admin opens the setup link and continues.
    let link = issue_link(&app, &app.org, None).await;
    let url = link["url"].as_str().unwrap().replace("127.0.0.1", "localhost");
    browser.goto(&url).await.unwrap();
    shots.take(&browser, "setup-link").await;
    find(&browser, Locator::Css("main button[type=submit]")).await.click().await.unwrap();
    arrive(&browser, "/portal").await;
    shots.take(&browser, "portal-overview").await;

    // Entra, chosen with the keyboard alone: Tab to the IdP choice, arrow to Entra, Tab, Enter.
    let passed = tab_to(&browser, "idp-generic").await;
    assert!(passed.iter().any(|p| p == "Skip to content"), "{passed:?}");
    assert!(passed.iter().any(|p| p == "Credential"), "the navigation is reachable: {passed:?}");
    browser.active_element().await.unwrap().send_keys(ARROW_DOWN).await.unwrap();
    assert_eq!(focused(&browser).await, "idp-entra");
    tab_to(&browser, "Save and show the steps").await;
    browser.active_element().await.unwrap().send_keys(ENTER).await.unwrap();
    arrive(&browser, "/portal/steps").await;
    let tenant_url = value_of(&browser, "tenant-url").await;
    assert_eq!(tenant_url, format!("{site}/scim/v2/{}?aadOptscim062020", app.org));
    let copy = find(&browser, Locator::Css("button.copy[data-copy=tenant-url]")).await;
    assert!(copy.is_displayed().await.unwrap(), "the script shows the copy button");
    shots.take(&browser, "portal-steps-entra").await;

    // The token: generated, shown once, and it provisions a user.
    find(&browser, Locator::LinkText("Credential")).await.click().await.unwrap();
    shots.take(&browser, "portal-credential").await;
    find(&browser, Locator::Id("generate-button")).await.click().await.unwrap();
    let token = value_of(&browser, "secret").await;
    assert!(token.starts_with("scimgate_"), "{token}");
    shots.take(&browser, "portal-credential-revealed").await;
    let user = json!({"schemas": [proto::schema::USER], "userName": "ada@example.com", "active": true});
    let response = app
        .client
        .post(format!("{}/scim/v2/{}/Users", app.address, app.org))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    browser.goto(&format!("{site}/portal/credential")).await.unwrap();
    assert!(browser.find(Locator::Id("secret")).await.is_err(), "the token is gone after the reveal");
    assert!(!browser.source().await.unwrap().contains(&token));
    shots.take(&browser, "portal-credential-after").await;
    find(&browser, Locator::LinkText("Organizations")).await.click().await.unwrap();
    shots.take(&browser, "portal-organizations").await;
    find(&browser, Locator::LinkText("Activity")).await.click().await.unwrap();
    arrive(&browser, "/portal/activity").await;
    find(&browser, Locator::Id("outcome")).await;
    // The user's creation shows up once the recorder has written its batch (off the request path).
    let mut recorded = false;
    for _ in 0..40 {
        let page = browser.source().await.unwrap();
        if page.contains("POST user") && page.contains("<td>201</td>") {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        browser.refresh().await.unwrap();
    }
    assert!(recorded, "the provisioned user is in the activity log");
    shots.take(&browser, "portal-activity").await;

    // The operator: sign in, create a tenant, issue its setup link.
    browser.goto(&format!("{site}/console")).await.unwrap();
    arrive(&browser, "/console/sign-in").await;
    shots.take(&browser, "console-sign-in").await;
    find(&browser, Locator::Id("token")).await.send_keys(&app.operator_token).await.unwrap();
    find(&browser, Locator::Css("main button[type=submit]")).await.click().await.unwrap();
    arrive(&browser, "/console").await;
    let org = format!("{}-browser", app.org);
    find(&browser, Locator::Id("name")).await.send_keys(&org).await.unwrap();
    shots.take(&browser, "console-tenants").await;
    find(&browser, Locator::Css("form[action='/console/tenants'] button")).await.click().await.unwrap();
    arrive(&browser, &format!("/console/tenants/{org}")).await;
    shots.take(&browser, "console-tenant").await;
    let issue = format!("form[action='/console/tenants/{org}/portal-links'] button");
    find(&browser, Locator::Css(&issue)).await.click().await.unwrap();
    let new_link = value_of(&browser, "secret").await;
    assert!(new_link.starts_with(&format!("{site}/portal/setup/")), "{new_link}");
    shots.take(&browser, "console-setup-link").await;
    browser.close().await.unwrap();
    drop(driver);
}
