//! `scimgate oauth-client`: a tenant's OAuth clients.

use clap::Subcommand;
use domain::{now_micros, ClientCredential, OAuthStore, TenantName};
use token::TokenId;

use super::TokenOptions;
use crate::config::Settings;
use crate::issuing::{self, parse_duration, TokenRequest};
use crate::oauth::clients;

#[derive(Debug, Subcommand)]
pub enum OAuthClientCommand {
    /// Create a client. Prints its client id, then its secret (shown once), each alone on its own
    /// line, the secret last; a federated client (--issuer ...) has no secret.
    Create {
        tenant: TenantName,
        #[command(flatten)]
        options: TokenOptions,
        /// Trust assertions from this issuer instead of a secret (with --subject, --audience and
        /// --jwks-url), e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.
        #[arg(long, requires_all = ["subject", "audience", "jwks_url"])]
        issuer: Option<String>,
        /// The `sub` the issuer's assertions carry (Entra: the service principal's object id).
        #[arg(long, requires = "issuer")]
        subject: Option<String>,
        /// The `aud` the assertions must name.
        #[arg(long, requires = "issuer")]
        audience: Option<String>,
        /// Where the issuer publishes its signing keys (https).
        #[arg(long, requires = "issuer")]
        jwks_url: Option<String>,
    },
    /// List the tenant's clients and their secrets (ids and dates; never secrets).
    List { tenant: TenantName },
    /// Give a client a new secret, printed once, alone on the last line.
    Rotate {
        tenant: TenantName,
        client_id: String,
        /// How long the earlier secret (and the access tokens it obtained) keeps working, e.g. 7d
        /// (default: it stops at once).
        #[arg(long)]
        overlap: Option<String>,
        /// The new secret expires after this long, e.g. 730d (default: never).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// The new secret expires at this RFC 3339 time.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke a client at once, with every access token it obtained.
    Revoke { tenant: TenantName, client_id: String },
}

impl OAuthClientCommand {
    /// The tenant the command is about, for error messages.
    pub fn tenant(&self) -> &TenantName {
        match self {
            Self::Create { tenant, .. }
            | Self::List { tenant }
            | Self::Rotate { tenant, .. }
            | Self::Revoke { tenant, .. } => tenant,
        }
    }
}

fn parse_client_id(id: &str) -> anyhow::Result<TokenId> {
    TokenId::parse(id)
        .map_err(|_| anyhow::anyhow!("`{id}` is not a client id (16 letters and digits, as `list` shows)"))
}

pub async fn oauth_client(
    command: OAuthClientCommand,
    settings: &Settings,
    output: super::Output,
) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    let base = settings.public_base();
    match command {
        OAuthClientCommand::Create { tenant, options, issuer, subject, audience, jwks_url } => {
            let request = options.request()?;
            let federation = match (issuer, subject, audience, jwks_url) {
                (Some(i), Some(s), Some(a), Some(j)) => Some(clients::federation(&i, &s, &a, &j)?),
                _ => None,
            };
            let federated = federation.is_some();
            let created = clients::create(&store, &tenant, &request, federation).await?;
            println!("OAuth client of {tenant} (scopes: {})", request.scopes);
            if let Some(expires_at) = request.expires_at {
                println!("expires: {}", domain::format_rfc3339(expires_at));
            }
            println!("Token URL: {base}/oauth2/{tenant}/token");
            println!("Tenant URL: {base}/scim/v2/{tenant}");
            if federated {
                println!("Client ID (federated: no secret):");
            } else {
                println!("Client ID, then Client Secret (shown once, store it now):");
            }
            println!("{}", created.id);
            if let Some(secret) = created.secret {
                println!("{}", secret.plaintext);
            }
        }
        OAuthClientCommand::List { tenant } => {
            let now = now_micros();
            let clients = store.list_oauth_clients(&tenant).await?;
            if output == super::Output::Json {
                let rows: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        let credential = match &c.credential {
                            ClientCredential::Federated(f) => serde_json::json!({
                                "issuer": f.issuer, "subject": f.subject, "audience": f.audience, "jwks_url": f.jwks_url,
                            }),
                            ClientCredential::Secret(secrets) => serde_json::json!(secrets
                                .iter()
                                .map(|s| serde_json::json!({"id": s.id.to_string(), "state": clients::state(&s.validity, now)}))
                                .collect::<Vec<_>>()),
                        };
                        serde_json::json!({
                            "client_id": c.id.to_string(),
                            "name": c.name,
                            "scopes": c.scopes.to_string().split(' ').collect::<Vec<_>>(),
                            "state": clients::state(&c.validity, now),
                            "created": domain::format_rfc3339(c.created_at),
                            "expires": c.validity.expires_at.map(domain::format_rfc3339),
                            "credential": credential,
                        })
                    })
                    .collect();
                super::print_json(&rows);
                return Ok(());
            }
            println!("CLIENT ID\tNAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tCREDENTIAL");
            for c in clients {
                let credential = match &c.credential {
                    ClientCredential::Federated(f) => format!("federated: iss={} sub={}", f.issuer, f.subject),
                    ClientCredential::Secret(secrets) => secrets
                        .iter()
                        .map(|s| format!("secret {} {}", s.id, clients::state(&s.validity, now)))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{credential}",
                    c.id,
                    c.name.as_deref().unwrap_or("-"),
                    c.scopes.to_string().replace(' ', ","),
                    clients::state(&c.validity, now),
                    domain::format_rfc3339(c.created_at),
                    issuing::date(c.validity.expires_at),
                );
            }
        }
        OAuthClientCommand::Rotate { tenant, client_id, overlap, expires_in, expires_at } => {
            let id = parse_client_id(&client_id)?;
            let expiry = TokenRequest::parse(None, None, expires_in.as_deref(), expires_at.as_deref())?;
            let overlap = overlap.as_deref().map(|o| parse_duration(o, "overlap")).transpose()?.unwrap_or_default();
            let secret = clients::rotate(&store, &tenant, &id, expiry.expires_at, overlap).await?;
            if overlap.is_zero() {
                println!("the earlier secret of client {id} stopped working");
            } else {
                println!("the earlier secret of client {id} stops working in {}", humantime::format_duration(overlap));
            }
            println!("New Client Secret (shown once, store it now):");
            println!("{}", secret.plaintext);
        }
        OAuthClientCommand::Revoke { tenant, client_id } => {
            let id = parse_client_id(&client_id)?;
            store.revoke_oauth_client(&tenant, &id).await?;
            println!("revoked OAuth client {id} of {tenant}");
        }
    }
    Ok(())
}
