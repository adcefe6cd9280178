//! `scimgate webhook …` and `scimgate events`: a tenant's webhook endpoints and its event feed.

use std::io::Write;

use clap::Subcommand;
use domain::{format_rfc3339, EventStore, TenantName};

use super::{open_store, print_json, Output};
use crate::config::Settings;
use crate::webhooks::{event_json, generate_secret, parse_url};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint that receives the tenant's events from now on (or all of them with
    /// --from-start); its signing secret is printed once, alone on the last line.
    Add {
        tenant: TenantName,
        url: String,
        /// Deliver every event the tenant already has, too.
        #[arg(long)]
        from_start: bool,
    },
    /// List the tenant's endpoints and where their delivery stands (never secrets).
    List { tenant: TenantName },
    /// Resume delivery to an endpoint (at once, even if it was backing off).
    Enable { tenant: TenantName, id: String },
    /// Pause delivery to an endpoint; events wait for it.
    Disable { tenant: TenantName, id: String },
    /// Remove an endpoint and its dead letters.
    Remove {
        tenant: TenantName,
        id: String,
        /// Confirm: undelivered events and dead letters of the endpoint are dropped.
        #[arg(long)]
        yes: bool,
    },
    /// List the events that failed every retry to an endpoint.
    DeadLetters { tenant: TenantName, id: String },
    /// Send dead-lettered events again: the one with sequence SEQ, or all of them.
    Redeliver { tenant: TenantName, id: String, seq: Option<i64> },
}

impl WebhookCommand {
    /// The tenant the command works on, for error messages.
    pub fn tenant(&self) -> &TenantName {
        match self {
            Self::Add { tenant, .. }
            | Self::List { tenant }
            | Self::Enable { tenant, .. }
            | Self::Disable { tenant, .. }
            | Self::Remove { tenant, .. }
            | Self::DeadLetters { tenant, .. }
            | Self::Redeliver { tenant, .. } => tenant,
        }
    }
}

/// `scimgate events`: one JSON event per line, in sequence order.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    tenant: TenantName,
    /// Print events after this sequence number (0: from the first).
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Print at most this many events (default: all).
    #[arg(long)]
    limit: Option<u64>,
}

impl EventsArgs {
    /// The tenant whose events are printed, for error messages.
    pub fn tenant(&self) -> &TenantName {
        &self.tenant
    }
}

/// Events read from the store per query.
const PAGE: u32 = 1000;

pub async fn webhook(command: WebhookCommand, settings: &Settings, output: Output) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        WebhookCommand::Add { tenant, url, from_start } => {
            let url = parse_url(&url).map_err(anyhow::Error::msg)?;
            let secret = generate_secret();
            let endpoint = store.add_webhook(&tenant, &url, &secret, from_start).await?;
            println!("webhook id: {}", endpoint.id);
            println!("url: {}", endpoint.url);
            println!("delivers events after sequence {}", endpoint.cursor);
            println!("Signing secret (shown once, store it now):");
            println!("{}", secret.expose());
        }
        WebhookCommand::List { tenant } => {
            let mut rows = Vec::new();
            if output == Output::Table {
                println!("ID\tURL\tSTATE\tCURSOR\tATTEMPTS\tNEXT ATTEMPT\tDEAD LETTERS\tLAST ERROR");
            }
            for w in store.list_webhooks(&tenant).await? {
                let dead = store.dead_letters(&tenant, &w.id).await?.len();
                if output == Output::Json {
                    rows.push(serde_json::json!({
                        "id": w.id,
                        "url": w.url.to_string(),
                        "enabled": w.enabled,
                        "cursor": w.cursor,
                        "attempts": w.attempts,
                        "next_attempt": w.next_attempt_at.map(format_rfc3339),
                        "dead_letters": dead,
                        "last_error": w.last_error,
                    }));
                    continue;
                }
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    w.id,
                    w.url,
                    if w.enabled { "enabled" } else { "disabled" },
                    w.cursor,
                    w.attempts,
                    w.next_attempt_at.map_or_else(|| "-".into(), format_rfc3339),
                    dead,
                    w.last_error.as_deref().unwrap_or("-"),
                );
            }
            if output == Output::Json {
                print_json(&rows);
            }
        }
        WebhookCommand::Enable { tenant, id } => set_enabled(&store, &tenant, &id, true).await?,
        WebhookCommand::Disable { tenant, id } => set_enabled(&store, &tenant, &id, false).await?,
        WebhookCommand::Remove { tenant, id, yes } => {
            anyhow::ensure!(
                yes,
                "`webhook remove` drops endpoint {id} of tenant {tenant} with its dead letters; run it again with \
                 --yes to do so"
            );
            store.delete_webhook(&tenant, &id).await?;
            println!("removed webhook {id} of {tenant}");
        }
        WebhookCommand::DeadLetters { tenant, id } => {
            let dead_letters = store.dead_letters(&tenant, &id).await?;
            if output == Output::Json {
                let rows: Vec<_> = dead_letters
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "seq": d.seq,
                            "type": d.event_type.to_string(),
                            "attempts": d.attempts,
                            "failed": format_rfc3339(d.failed_at),
                            "redelivery_requested": d.redeliver_requested_at.map(format_rfc3339),
                            "last_error": d.last_error,
                        })
                    })
                    .collect();
                print_json(&rows);
                return Ok(());
            }
            println!("SEQ\tTYPE\tATTEMPTS\tFAILED\tREDELIVERY REQUESTED\tLAST ERROR");
            for d in dead_letters {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    d.seq,
                    d.event_type,
                    d.attempts,
                    format_rfc3339(d.failed_at),
                    d.redeliver_requested_at.map_or_else(|| "-".into(), format_rfc3339),
                    d.last_error,
                );
            }
        }
        WebhookCommand::Redeliver { tenant, id, seq } => {
            let requested = store.request_redelivery(&tenant, &id, seq).await?;
            println!(
                "requested redelivery of {requested} event(s) to webhook {id}; a running gateway sends them shortly"
            );
        }
    }
    Ok(())
}

async fn set_enabled(store: &impl EventStore, tenant: &TenantName, id: &str, enabled: bool) -> anyhow::Result<()> {
    store.set_webhook_enabled(tenant, id, enabled).await?;
    println!("{} webhook {id} of {tenant}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

pub async fn events(args: EventsArgs, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let tenant = &args.tenant;
    anyhow::ensure!(args.after >= 0, "--after must be 0 or a sequence number");
    let (mut after, mut left) = (args.after, args.limit.unwrap_or(u64::MAX));
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let page = u32::try_from(left.min(u64::from(PAGE))).unwrap_or(PAGE);
        let events = store.events_after(tenant, after, page).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        left -= events.len() as u64;
        for event in &events {
            writeln!(out, "{}", event_json(event))?;
        }
    }
    out.flush()?;
    Ok(())
}
