//! `scimgate account` and `scimgate user`: the product's accounts, which SCIM users link to, and
//! users as the product reads them.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use domain::{AccountId, AccountStore, ProductAccount, TenantName, UserLookup, MAX_ACCOUNTS_PER_CALL};
use serde::Deserialize;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Register one account (or change what links to it).
    Add {
        tenant: TenantName,
        id: String,
        /// The email a SCIM user's work or primary email must match (case-insensitively).
        #[arg(long)]
        email: Option<String>,
        /// The externalId a SCIM user must have.
        #[arg(long)]
        external_id: Option<String>,
    },
    /// Register accounts from a file of JSON lines `{"id", "email"?, "external_id"?}` ("-":
    /// standard input), 10,000 per transaction.
    Import { tenant: TenantName, file: PathBuf },
    /// Show an account and the user linked to it.
    Show { tenant: TenantName, id: String },
    /// Forget an account (its user is unlinked).
    Remove { tenant: TenantName, id: String },
}

/// How `scimgate user show` finds users.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct UserLookupArgs {
    /// The SCIM id.
    #[arg(long)]
    id: Option<String>,
    /// The linking email.
    #[arg(long)]
    email: Option<String>,
    /// The linked product account.
    #[arg(long)]
    account: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Show users by SCIM id, email or linked account, one JSON object per line.
    Show {
        tenant: TenantName,
        #[command(flatten)]
        lookup: UserLookupArgs,
    },
}

impl AccountCommand {
    /// The tenant the command is about, for error messages.
    pub fn tenant(&self) -> &TenantName {
        match self {
            Self::Add { tenant, .. }
            | Self::Import { tenant, .. }
            | Self::Show { tenant, .. }
            | Self::Remove { tenant, .. } => tenant,
        }
    }
}

impl UserCommand {
    /// The tenant the command is about, for error messages.
    pub fn tenant(&self) -> &TenantName {
        match self {
            Self::Show { tenant, .. } => tenant,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountLine {
    id: String,
    email: Option<String>,
    external_id: Option<String>,
}

fn print_account(account: &ProductAccount) {
    println!("id:          {}", account.id);
    println!("email:       {}", account.email.as_deref().unwrap_or("-"));
    println!("external id: {}", account.external_id.as_deref().unwrap_or("-"));
    match (&account.user_id, account.matched) {
        (Some(user), Some(matched)) => println!("linked to:   {user} (by {})", matched.as_str()),
        _ => println!("linked to:   nobody yet"),
    }
}

pub async fn account(command: AccountCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    match command {
        AccountCommand::Add { tenant, id, email, external_id } => {
            let account = ProductAccount::new(AccountId::parse(&id)?, email.as_deref(), external_id.as_deref())?;
            store.register_accounts(&tenant, std::slice::from_ref(&account)).await?;
            print_account(&store.account(&tenant, &account.id).await?);
        }
        AccountCommand::Import { tenant, file } => {
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?,
                ))
            };
            let (mut created, mut updated, mut linked) = (0, 0, 0);
            let mut batch = Vec::new();
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed: AccountLine =
                    serde_json::from_str(&line).with_context(|| format!("line {}: not an account", n + 1))?;
                let account = AccountId::parse(&parsed.id)
                    .and_then(|id| ProductAccount::new(id, parsed.email.as_deref(), parsed.external_id.as_deref()))
                    .with_context(|| format!("line {}", n + 1))?;
                batch.push(account);
                if batch.len() == MAX_ACCOUNTS_PER_CALL {
                    let done = store.register_accounts(&tenant, &batch).await?;
                    (created, updated, linked) = (created + done.created, updated + done.updated, linked + done.linked);
                    batch.clear();
                }
            }
            let done = store.register_accounts(&tenant, &batch).await?;
            (created, updated, linked) = (created + done.created, updated + done.updated, linked + done.linked);
            println!("{created} created, {updated} updated, {linked} user(s) linked");
        }
        AccountCommand::Show { tenant, id } => {
            print_account(&store.account(&tenant, &AccountId::parse(&id)?).await?);
        }
        AccountCommand::Remove { tenant, id } => {
            store.delete_account(&tenant, &AccountId::parse(&id)?).await?;
            println!("removed account {id}");
        }
    }
    Ok(())
}

pub async fn user(command: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    let UserCommand::Show { tenant, lookup } = command;
    let lookup = match lookup {
        UserLookupArgs { id: Some(id), .. } => UserLookup::Id(id),
        UserLookupArgs { email: Some(email), .. } => UserLookup::Email(email),
        UserLookupArgs { account: Some(account), .. } => UserLookup::Account(AccountId::parse(&account)?),
        _ => anyhow::bail!("give one of --id, --email and --account"),
    };
    let users = store.find_users(&tenant, &lookup).await?;
    if users.is_empty() {
        anyhow::bail!("no such user");
    }
    for user in users {
        let mut line = serde_json::json!({"id": user.id, "scim": user.data});
        if let Some(email) = user.email {
            line["email"] = email.into();
        }
        if let Some(account) = user.account_id {
            line["product_account"] = serde_json::json!({"id": account, "matched": user.matched.map(|m| m.as_str())});
        }
        println!("{line}");
    }
    Ok(())
}
