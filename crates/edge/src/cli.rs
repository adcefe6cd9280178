//! The `scimgate` command line.

mod accounts;
mod activity;
mod oauth_clients;
mod portal;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use domain::RateLimit;
use domain::{
    format_rfc3339, now_micros, AccessTokenLifetime, AuthMethods, Deprovision, DuplicateEmails, GroupMatcher, LinkBy,
    Membership, OrganizationName, OrganizationStore, Role, Tenant, TenantName, TenantStore, TenantUpdate, TokenInfo,
    TokenOwner, TokenStore,
};
use proto::IdpProfile;
use token::{IssuedToken, TokenId};

use crate::config::{LogFormat, Overrides, Settings};
use crate::issuing::{self, parse_duration, IssueError, TokenRequest};
use crate::startup::{connect_store, Application};
pub use accounts::{AccountCommand, UserCommand};
pub use activity::ActivityArgs;
use domain::SqlStore;
pub use oauth_clients::OAuthClientCommand;
pub use portal::PortalLinkArgs;
use secrecy::{ExposeSecret, SecretString};
pub use webhooks::{EventsArgs, WebhookCommand};

#[derive(Debug, Parser)]
#[command(name = "scimgate", version, about = "Multi-tenant SCIM 2.0 provisioning gateway")]
pub struct Cli {
    /// TOML configuration file (also SCIMGATE_CONFIG).
    #[arg(long, global = true, env = "SCIMGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://... (also SCIMGATE_DATABASE_URL).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Address to listen on (also SCIMGATE_LISTEN).
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// External base URL, e.g. https://scim.example.com (also SCIMGATE_PUBLIC_URL).
    #[arg(long, global = true)]
    pub public_url: Option<String>,
    /// Log format (also SCIMGATE_LOG_FORMAT).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// How list commands print: tab-separated lines with a header, or one JSON array.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// How list commands print their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Tab-separated columns under a header line.
    #[default]
    Table,
    /// One JSON array of objects, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants (customer organizations).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's SCIM bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage a tenant's OAuth clients (client credentials or federated credentials).
    #[command(subcommand)]
    OauthClient(OAuthClientCommand),
    /// Manage operator tokens for the admin API (/admin/v1).
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Manage a tenant's organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage the rules that map a tenant's groups to organizations.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Show a user's organization memberships.
    Memberships { tenant: TenantName, user_id: String },
    /// What will go wrong with a tenant's provisioning (the readiness report, as JSON).
    Readiness { tenant: TenantName },
    /// Register the product's accounts, which SCIM users link to.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Read a tenant's users by id, email or linked account.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage a tenant's webhook endpoints and their dead letters.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Print a tenant's events, one JSON object per line, in sequence order.
    Events(EventsArgs),
    /// Issue a one-time setup link into the tenant's setup portal (the URL alone on the last
    /// line); or list (--list) or revoke (--revoke ID) its links.
    PortalLink(PortalLinkArgs),
    /// Print a tenant's provisioning activity, newest first: each SCIM request and its answer.
    Activity(ActivityArgs),
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization (groups named like it then give it).
    Create {
        tenant: TenantName,
        name: OrganizationName,
    },
    List {
        tenant: TenantName,
    },
    /// List an organization's members with their roles.
    Members {
        tenant: TenantName,
        name: OrganizationName,
    },
    /// Delete an organization no group gives any more.
    Delete {
        tenant: TenantName,
        name: OrganizationName,
        /// Confirm: the organization and its memberships are gone for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Map groups to an organization: by display name (--group) or SCIM id (--group-id).
    Add {
        tenant: TenantName,
        #[arg(long, required_unless_present = "group_id", conflicts_with = "group_id")]
        group: Option<String>,
        #[arg(long)]
        group_id: Option<String>,
        /// The organization the group's users join.
        #[arg(long)]
        org: OrganizationName,
        /// member, admin or owner.
        #[arg(long, default_value = "member")]
        role: Role,
    },
    List {
        tenant: TenantName,
    },
    Remove {
        tenant: TenantName,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; its SCIM base URL is /scim/v2/<NAME>.
    Create {
        name: TenantName,
    },
    List,
    /// Show a tenant's settings.
    Show {
        name: TenantName,
    },
    /// Change a tenant's settings.
    Set {
        name: TenantName,
        /// Requests per second this tenant may make (with --rate-limit-burst).
        #[arg(long, requires = "rate_limit_burst", conflicts_with = "default_rate_limit")]
        rate_limit_per_second: Option<u32>,
        /// Requests this tenant may make at once above its rate.
        #[arg(long, requires = "rate_limit_per_second")]
        rate_limit_burst: Option<u32>,
        /// Return to the gateway's default rate limit.
        #[arg(long)]
        default_rate_limit: bool,
        /// The IdP it provisions from: generic, entra, okta, onelogin, jumpcloud, ping.
        #[arg(long)]
        idp_profile: Option<IdpProfile>,
        /// Create an organization for a group that matches no mapping and no organization.
        #[arg(long)]
        autoprovision: Option<bool>,
        /// The role a group gives without a mapping: member, admin or owner.
        #[arg(long)]
        default_role: Option<Role>,
        /// What deactivating a user does to their memberships: suspend or remove.
        #[arg(long)]
        deprovision: Option<Deprovision>,
        /// Which credentials the SCIM endpoint accepts: bearer, oauth or both.
        #[arg(long)]
        auth_methods: Option<AuthMethods>,
        /// How long OAuth access tokens live, 1h to 6h (e.g. 2h).
        #[arg(long)]
        access_token_lifetime: Option<String>,
        /// What may link a SCIM user to a product account: email, externalId, both
        /// (comma-separated) or none.
        #[arg(long)]
        link_by: Option<LinkBy>,
        /// Two users with one linking email: allow (and flag) or refuse (409).
        #[arg(long)]
        duplicate_emails: Option<DuplicateEmails>,
    },
    /// Delete a tenant and all its users, groups, tokens, organizations and events.
    Delete {
        name: TenantName,
        /// Confirm: nothing of the tenant can be recovered afterwards.
        #[arg(long)]
        yes: bool,
    },
}

/// What a new token may do and how long it lives.
#[derive(Debug, clap::Args)]
pub struct TokenOptions {
    /// Space- or comma-separated scopes (users:read users:write groups:read groups:write; default all).
    #[arg(long)]
    scopes: Option<String>,
    /// A label shown in listings, e.g. "Entra production".
    #[arg(long)]
    name: Option<String>,
    /// Expire after this long, e.g. 90d or 12h (default: never).
    #[arg(long, conflicts_with = "expires_at")]
    expires_in: Option<String>,
    /// Expire at this RFC 3339 time, e.g. 2027-01-31T00:00:00Z.
    #[arg(long)]
    expires_at: Option<String>,
}

impl TokenOptions {
    pub(crate) fn request(&self) -> Result<TokenRequest, IssueError> {
        TokenRequest::parse(
            self.scopes.as_deref(),
            self.name.as_deref(),
            self.expires_in.as_deref(),
            self.expires_at.as_deref(),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a new token; printed once, alone on the last line.
    Create {
        tenant: TenantName,
        #[command(flatten)]
        options: TokenOptions,
    },
    /// Issue a new token and revoke every earlier one (after --grace); printed once, alone on the
    /// last line.
    Regenerate {
        tenant: TenantName,
        /// How long earlier tokens keep working, e.g. 1h (default: they stop at once).
        #[arg(long)]
        grace: Option<String>,
        #[command(flatten)]
        options: TokenOptions,
    },
    /// List the tenant's tokens (ids, names, dates; never secrets).
    List { tenant: TenantName },
    /// Revoke one token by id, at once.
    Revoke { tenant: TenantName, id: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Issue an operator token; printed once, alone on the last line.
    Create {
        /// A label shown in listings, e.g. "deploy pipeline".
        #[arg(long)]
        name: Option<String>,
        /// Expire after this long, e.g. 30d (default: never).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Expire at this RFC 3339 time.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List operator tokens (never secrets).
    List,
    /// Revoke an operator token by id, at once.
    Revoke { id: String },
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            database_url: self.database_url.clone().map(SecretString::from),
            listen: self.listen,
            public_url: self.public_url.clone(),
            log_format: self.log_format,
        }
    }
}

/// Run a command and report its failure on stderr, once: what failed and where (the tenant, the
/// database), as one JSON object when logs are JSON. The process's exit status.
pub async fn main(cli: Cli) -> std::process::ExitCode {
    // Known before the settings are, so that even a bad setting is reported in the right format.
    let json = cli.log_format == Some(LogFormat::Json)
        || (cli.log_format.is_none() && std::env::var("SCIMGATE_LOG_FORMAT").is_ok_and(|f| f.trim() == "json"));
    let place = Place::of(&cli);
    let (settings, warnings) = match Settings::load(cli.config.as_ref(), &cli.overrides()) {
        Ok(loaded) => loaded,
        Err(e) => return report(&anyhow::Error::from(e), &[], json),
    };
    let json = settings.log_format == LogFormat::Json;
    let _telemetry = crate::telemetry::init(settings.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let database =
        place.database.then(|| (settings.database_url.expose_secret().to_owned(), describe_database(&settings)));
    match run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // (what the message may already say, what to add if it does not)
            let mut context = Vec::new();
            if let Some(tenant) = place.tenant {
                context.push((tenant.clone(), format!("tenant {tenant}")));
            }
            if let Some((url, described)) = database {
                let shown = url.parse::<domain::DatabaseUrl>().map(|u| u.to_string()).unwrap_or(url);
                context.push((shown, format!("database {described}")));
            }
            report(&e, &context, json)
        }
    }
}

/// What a command works on, named in its error messages.
struct Place {
    tenant: Option<String>,
    /// Whether it opens the database (every command but `serve`, whose errors say so themselves).
    database: bool,
}

impl Place {
    fn of(cli: &Cli) -> Self {
        let tenant = match &cli.command {
            Command::Serve | Command::Migrate | Command::AdminToken(_) => None,
            Command::Tenant(TenantCommand::List) => None,
            Command::Tenant(
                TenantCommand::Create { name }
                | TenantCommand::Show { name }
                | TenantCommand::Set { name, .. }
                | TenantCommand::Delete { name, .. },
            ) => Some(name),
            Command::Token(
                TokenCommand::Create { tenant, .. }
                | TokenCommand::Regenerate { tenant, .. }
                | TokenCommand::List { tenant }
                | TokenCommand::Revoke { tenant, .. },
            )
            | Command::Org(
                OrgCommand::Create { tenant, .. }
                | OrgCommand::List { tenant }
                | OrgCommand::Members { tenant, .. }
                | OrgCommand::Delete { tenant, .. },
            )
            | Command::Mapping(
                MappingCommand::Add { tenant, .. }
                | MappingCommand::List { tenant }
                | MappingCommand::Remove { tenant, .. },
            )
            | Command::Memberships { tenant, .. }
            | Command::Readiness { tenant } => Some(tenant),
            Command::Webhook(command) => Some(command.tenant()),
            Command::OauthClient(command) => Some(command.tenant()),
            Command::Account(command) => Some(command.tenant()),
            Command::User(command) => Some(command.tenant()),
            Command::Events(args) => Some(args.tenant()),
            Command::PortalLink(args) => Some(args.tenant()),
            Command::Activity(args) => Some(args.tenant()),
        };
        Self { tenant: tenant.map(ToString::to_string), database: !matches!(cli.command, Command::Serve) }
    }
}

/// The database as messages name it: the URL without its password and, for a SQLite file given
/// by a relative path, the absolute path it resolved to here.
fn describe_database(settings: &Settings) -> String {
    let Ok(url) = settings.database_url() else { return settings.database_url.expose_secret().to_owned() };
    match url.sqlite_file().filter(|f| f.is_relative()) {
        Some(file) => match std::env::current_dir() {
            Ok(dir) => format!("{url} ({})", dir.join(file).display()),
            Err(_) => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Print `error` once: its causes in order, each left out when the one before already says it
/// (`cannot listen on …: Address already in use` rather than the OS error twice), then `context`
/// unless the message names it already.
fn report(error: &anyhow::Error, context: &[(String, String)], json: bool) -> std::process::ExitCode {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    let missing: Vec<&str> =
        context.iter().filter(|(said, _)| !message.contains(said.as_str())).map(|(_, text)| text.as_str()).collect();
    if !missing.is_empty() {
        message = format!("{message} ({})", missing.join(", "));
    }
    if json {
        let line = serde_json::json!({
            "timestamp": format_rfc3339(now_micros()),
            "level": "ERROR",
            "fields": { "message": message },
            "target": "scimgate",
        });
        eprintln!("{line}");
    } else {
        eprintln!("error: {message}");
    }
    std::process::ExitCode::FAILURE
}

/// Run a command; the error text is what the operator sees.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let output = cli.output;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            connect_store(&settings).await?;
            println!("migrations applied to {}", settings.database_url()?);
            Ok(())
        }
        Command::Tenant(command) => tenant(command, &settings, output).await,
        Command::Token(command) => token(command, &settings, output).await,
        Command::OauthClient(command) => oauth_clients::oauth_client(command, &settings, output).await,
        Command::AdminToken(command) => admin_token(command, &settings, output).await,
        Command::Org(command) => organization(command, &settings, output).await,
        Command::Mapping(command) => mapping(command, &settings, output).await,
        Command::Memberships { tenant, user_id } => {
            let store = open_store(&settings).await?;
            print_memberships(&store.user_memberships(&tenant, &user_id).await?, output);
            Ok(())
        }
        Command::Readiness { tenant } => {
            let store = open_store(&settings).await?;
            let default_rate = settings.default_rate_per_second();
            let report = domain::readiness_report(&store, default_rate, &tenant).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Account(command) => accounts::account(command, &settings).await,
        Command::User(command) => accounts::user(command, &settings).await,
        Command::Webhook(command) => webhooks::webhook(command, &settings, output).await,
        Command::Events(args) => webhooks::events(args, &settings).await,
        Command::PortalLink(args) => portal::portal_link(args, &settings, output).await,
        Command::Activity(args) => activity::activity(args, &settings, output).await,
    }
}

/// Open the configured database for an operator command, migrating it, but never creating one:
/// a command run in the wrong directory would otherwise make an empty SQLite file there and
/// answer "tenant not found". `serve` and `migrate` create it.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<SqlStore> {
    let url = settings.database_url()?;
    if let Some(file) = url.sqlite_file() {
        if !url.names_mode() && !file.exists() {
            anyhow::bail!(
                "there is no database here: `scimgate migrate` or `scimgate serve` creates it; or point \
                 SCIMGATE_DATABASE_URL (--database-url) at the gateway's database"
            );
        }
    }
    Ok(connect_store(settings).await?)
}

/// Print `rows` as one JSON array.
fn print_json(rows: &[serde_json::Value]) {
    println!("{}", serde_json::Value::Array(rows.to_vec()));
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (public_url, ip) = (settings.public_url.clone(), settings.listen.ip());
    let database = describe_database(&settings);
    let format = settings.log_format;
    let app = Application::build(settings).await?;
    // The port bound, which `listen` may have left to the system (port 0).
    let base = match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", std::net::SocketAddr::new(ip, app.port())),
    };
    tracing::info!(port = app.port(), %database, scim_base = %format!("{base}/scim/v2/<org>"), "scimgate listening");
    // The hint is for a person at a terminal; a log collector has the line above.
    if format == LogFormat::Pretty {
        let exe = command_name();
        eprintln!(
            "scimgate is serving SCIM at {base}/scim/v2/<org> (database {database}).\n\
             Create a tenant and its token in another terminal:\n  \
             {exe} tenant create acme\n  {exe} token create acme\n\
             then give your IdP the Tenant URL {base}/scim/v2/acme and the token."
        );
    }
    app.run_until_stopped().await?;
    Ok(())
}

/// How to invoke this binary from the current directory, for the start-up hint.
fn command_name() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(exe), Some(cwd)) => match exe.strip_prefix(&cwd) {
            Ok(relative) => format!("./{}", relative.display()),
            Err(_) => exe.display().to_string(),
        },
        _ => "scimgate".into(),
    }
}

async fn tenant(command: TenantCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        TenantCommand::Create { name } => {
            store.create_tenant(&name).await?;
            println!("created tenant {name}");
            println!("Tenant URL: {}/scim/v2/{name}", settings.public_base());
            println!("next: scimgate token create {name}");
        }
        TenantCommand::List => {
            let tenants = store.list_tenants().await?;
            if output == Output::Json {
                let rows: Vec<_> = tenants
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "name": t.name.as_str(),
                            "tenant_url": format!("{}/scim/v2/{}", settings.public_base(), t.name),
                            "created": format_rfc3339(t.created_at),
                        })
                    })
                    .collect();
                print_json(&rows);
                return Ok(());
            }
            println!("NAME\tCREATED");
            for tenant in tenants {
                println!("{}\t{}", tenant.name, format_rfc3339(tenant.created_at));
            }
        }
        TenantCommand::Show { name } => show_tenant(&store.tenant(&name).await?, settings),
        TenantCommand::Set {
            name,
            rate_limit_per_second,
            rate_limit_burst,
            default_rate_limit,
            idp_profile,
            autoprovision,
            default_role,
            deprovision,
            auth_methods,
            access_token_lifetime,
            link_by,
            duplicate_emails,
        } => {
            let access_token_lifetime = access_token_lifetime
                .map(|l| {
                    let d = parse_duration(&l, "access token lifetime")?;
                    Ok::<_, anyhow::Error>(AccessTokenLifetime::from_seconds(d.as_secs())?)
                })
                .transpose()?;
            let rate_limit = match (rate_limit_per_second, rate_limit_burst, default_rate_limit) {
                (Some(per_second), Some(burst), _) => Some(Some(
                    RateLimit::new(per_second, burst)
                        .ok_or_else(|| anyhow::anyhow!("the rate limit and burst must be positive"))?,
                )),
                (_, _, true) => Some(None),
                _ => None,
            };
            let update = TenantUpdate {
                rate_limit,
                idp_profile,
                autoprovision,
                default_role,
                deprovision,
                auth_methods,
                access_token_lifetime,
                link_by,
                duplicate_emails,
            };
            let tenant = store.update_tenant(&name, &update).await?;
            show_tenant(&tenant, settings);
        }
        TenantCommand::Delete { name, yes } => {
            store.tenant(&name).await?;
            anyhow::ensure!(
                yes,
                "`tenant delete` removes tenant {name} with all its users, groups, tokens, organizations, \
                 webhooks and events, for good; run it again with --yes to do so"
            );
            store.delete_tenant(&name).await?;
            println!("deleted tenant {name}");
        }
    }
    Ok(())
}

fn show_tenant(tenant: &Tenant, settings: &Settings) {
    println!("name:        {}", tenant.name);
    println!("Tenant URL:  {}/scim/v2/{}", settings.public_base(), tenant.name);
    println!("created:     {}", format_rfc3339(tenant.created_at));
    match (tenant.rate_limit, settings.default_quota()) {
        (Some(q), _) => println!("rate limit:  {}/s, burst {} (this tenant's own)", q.per_second, q.burst),
        (None, Some(q)) => println!("rate limit:  {}/s, burst {} (the default)", q.per_second, q.burst),
        (None, None) => println!("rate limit:  none"),
    }
    let settings = &tenant.settings;
    println!("IdP profile: {}", settings.idp_profile);
    println!("autoprovision: {}", if settings.autoprovision { "on" } else { "off" });
    println!("default role: {}", settings.default_role);
    println!("deprovision: {}", settings.deprovision.as_str());
    println!("auth methods: {}", settings.auth_methods);
    println!(
        "access token lifetime: {}",
        humantime::format_duration(std::time::Duration::from_secs(settings.access_token_lifetime.seconds().into()))
    );
    println!("link by:     {}", settings.link_by);
    println!("duplicate emails: {}", settings.duplicate_emails.as_str());
}

async fn token(command: TokenCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        TokenCommand::Create { tenant, options } => {
            let request = options.request()?;
            store.tenant(&tenant).await?;
            let issued = issuing::issue(&store, TokenOwner::Tenant(&tenant), &request).await?;
            print_issued(&issued, &request, Some((settings, &tenant)));
        }
        TokenCommand::Regenerate { tenant, grace, options } => {
            let request = options.request()?;
            let grace = grace.as_deref().map(|g| parse_duration(g, "grace period")).transpose()?.unwrap_or_default();
            let issued = issuing::regenerate(&store, &tenant, &request, grace).await?;
            if grace.is_zero() {
                println!("revoked every earlier token of {tenant}");
            } else {
                println!("earlier tokens of {tenant} stop working in {}", humantime::format_duration(grace));
            }
            print_issued(&issued, &request, Some((settings, &tenant)));
        }
        TokenCommand::List { tenant } => {
            store.tenant(&tenant).await?;
            print_tokens(&store.list_tokens(TokenOwner::Tenant(&tenant)).await?, output);
        }
        TokenCommand::Revoke { tenant, id } => {
            let id = parse_token_id(&id)?;
            store.revoke_token(TokenOwner::Tenant(&tenant), &id).await?;
            println!("revoked token {id} of {tenant}");
        }
    }
    Ok(())
}

async fn admin_token(command: AdminTokenCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        AdminTokenCommand::Create { name, expires_in, expires_at } => {
            let request = TokenRequest::parse(None, name.as_deref(), expires_in.as_deref(), expires_at.as_deref())?;
            let issued = issuing::issue(&store, TokenOwner::Operator, &request).await?;
            print_issued(&issued, &request, None);
        }
        AdminTokenCommand::List => print_tokens(&store.list_tokens(TokenOwner::Operator).await?, output),
        AdminTokenCommand::Revoke { id } => {
            let id = parse_token_id(&id)?;
            store.revoke_token(TokenOwner::Operator, &id).await?;
            println!("revoked operator token {id}");
        }
    }
    Ok(())
}

async fn organization(command: OrgCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        OrgCommand::Create { tenant, name } => {
            let organization = store.create_organization(&tenant, &name).await?;
            println!("created organization {} ({})", organization.name, organization.id);
        }
        OrgCommand::List { tenant } => {
            let organizations = store.list_organizations(&tenant).await?;
            if output == Output::Json {
                let rows: Vec<_> = organizations
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "name": o.name.to_string(),
                            "id": o.id,
                            "autoprovisioned": o.autoprovisioned,
                            "created": format_rfc3339(o.created_at),
                        })
                    })
                    .collect();
                print_json(&rows);
                return Ok(());
            }
            println!("NAME\tID\tAUTOPROVISIONED\tCREATED");
            for o in organizations {
                println!("{}\t{}\t{}\t{}", o.name, o.id, o.autoprovisioned, format_rfc3339(o.created_at));
            }
        }
        OrgCommand::Members { tenant, name } => {
            let members = store.organization_members(&tenant, &name).await?;
            print_memberships(&members, output);
        }
        OrgCommand::Delete { tenant, name, yes } => {
            anyhow::ensure!(
                yes,
                "`org delete` removes organization {name} of tenant {tenant} and its memberships; run it again \
                 with --yes to do so"
            );
            store.delete_organization(&tenant, &name).await?;
            println!("deleted organization {name}");
        }
    }
    Ok(())
}

async fn mapping(command: MappingCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        MappingCommand::Add { tenant, group, group_id, org, role } => {
            let matcher = match (group, group_id) {
                (Some(name), _) => GroupMatcher::DisplayName(name),
                (None, Some(id)) => GroupMatcher::Id(id),
                (None, None) => anyhow::bail!("give --group or --group-id"),
            };
            let mapping = store.add_mapping(&tenant, matcher, &org, role).await?;
            println!("mapping {} added", mapping.id);
        }
        MappingCommand::List { tenant } => {
            let mappings = store.list_mappings(&tenant).await?;
            if output == Output::Json {
                let rows: Vec<_> = mappings
                    .iter()
                    .map(|m| {
                        let (key, group) = match &m.matcher {
                            GroupMatcher::DisplayName(name) => ("group", name),
                            GroupMatcher::Id(id) => ("group_id", id),
                        };
                        serde_json::json!({
                            "id": m.id,
                            key: group,
                            "organization": m.organization.to_string(),
                            "role": m.role.to_string(),
                        })
                    })
                    .collect();
                print_json(&rows);
                return Ok(());
            }
            println!("ID\tGROUP\tORGANIZATION\tROLE");
            for m in mappings {
                let group = match &m.matcher {
                    GroupMatcher::DisplayName(name) => format!("name:{name}"),
                    GroupMatcher::Id(id) => format!("id:{id}"),
                };
                println!("{}\t{group}\t{}\t{}", m.id, m.organization, m.role);
            }
        }
        MappingCommand::Remove { tenant, id } => {
            store.remove_mapping(&tenant, &id).await?;
            println!("mapping {id} removed");
        }
    }
    Ok(())
}

fn print_memberships(memberships: &[Membership], output: Output) {
    if output == Output::Json {
        let rows: Vec<_> = memberships
            .iter()
            .map(|m| {
                serde_json::json!({
                    "organization": m.organization.to_string(),
                    "user_id": m.user_id,
                    "user_name": m.user_name,
                    "role": m.role.to_string(),
                    "state": m.state.as_str(),
                    "since": format_rfc3339(m.created_at),
                })
            })
            .collect();
        print_json(&rows);
        return;
    }
    println!("ORGANIZATION\tUSER\tUSERNAME\tROLE\tSTATE\tSINCE");
    for m in memberships {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            m.organization,
            m.user_id,
            m.user_name,
            m.role,
            m.state.as_str(),
            format_rfc3339(m.created_at)
        );
    }
}

fn parse_token_id(id: &str) -> anyhow::Result<TokenId> {
    TokenId::parse(id).map_err(|_| anyhow::anyhow!("`{id}` is not a token id (16 letters and digits, as `list` shows)"))
}

/// The plaintext goes alone on the last line of stdout, where scripts capture it.
fn print_issued(issued: &IssuedToken, request: &TokenRequest, tenant: Option<(&Settings, &TenantName)>) {
    println!("token id: {} (scopes: {})", issued.id, request.scopes);
    if let Some(expires_at) = request.expires_at {
        println!("expires: {}", format_rfc3339(expires_at));
    }
    if let Some((settings, tenant)) = tenant {
        println!("Tenant URL: {}/scim/v2/{tenant}", settings.public_base());
        println!("Secret Token (shown once, store it now):");
    } else {
        println!("Operator token for /admin/v1 (shown once, store it now):");
    }
    println!("{}", issued.plaintext);
}

fn print_tokens(tokens: &[TokenInfo], output: Output) {
    let now = now_micros();
    if output == Output::Json {
        let rows: Vec<_> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id.to_string(),
                    "name": t.name,
                    "scopes": t.scopes.to_string().split(' ').collect::<Vec<_>>(),
                    "state": issuing::state(t, now),
                    "created": format_rfc3339(t.created_at),
                    "expires": t.validity.expires_at.map(format_rfc3339),
                    "revoked": t.validity.revoked_at.map(format_rfc3339),
                    "last_used": t.last_used_at.map(format_rfc3339),
                })
            })
            .collect();
        print_json(&rows);
        return;
    }
    println!("ID\tNAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tREVOKED\tLAST USED");
    for t in tokens {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.name.as_deref().unwrap_or("-"),
            t.scopes.to_string().replace(' ', ","),
            issuing::state(t, now),
            format_rfc3339(t.created_at),
            issuing::date(t.validity.expires_at),
            issuing::date(t.validity.revoked_at),
            issuing::date(t.last_used_at),
        );
    }
}
