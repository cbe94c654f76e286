//! The account commands: `lifeline user` (admin), `lifeline token` and `lifeline endpoint share`.

use clap::{Args, Subcommand};
use lifeline_client::Client;
use lifeline_model::api::{NewToken, NewUser, ShareEndpoint, TokenListQuery, UserQuotas};

use crate::Connection;
use crate::client::{CliError, CliResult, endpoint_id};

/// `lifeline user ...` (admin only).
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user; prints their first token as the last line.
    #[command(
        after_help = "Examples:\n  lifeline user add ada\n  lifeline user add grace --admin --json"
    )]
    Add {
        name: String,
        /// Make them an admin
        #[arg(long)]
        admin: bool,
        /// Print {"user", "token"} as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List users and their quotas.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove a user: their tokens stop working at once; their tasks stay.
    Remove {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Set a user's quotas.
    #[command(
        after_help = "Example:\n  lifeline user quota ada --max-queued 100000 --max-submits-per-sec 20"
    )]
    Quota(QuotaArgs),
}

#[derive(Debug, Args)]
pub(crate) struct QuotaArgs {
    name: String,
    /// Unfinished tasks they may have
    #[arg(long)]
    max_queued: Option<u64>,
    /// Submissions they may make per second
    #[arg(long)]
    max_submits_per_sec: Option<f64>,
    #[command(flatten)]
    connection: Connection,
}

/// `lifeline token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token for yourself; prints it as the last line (admin: `--user` for someone else).
    #[command(
        after_help = "Examples:\n  lifeline token create --name laptop --expires 30d\n  lifeline token create --json"
    )]
    Create {
        /// A label to recognise it by
        #[arg(long)]
        name: Option<String>,
        /// How long it lives: 30d, 12h, 45m or 90s [default: forever]
        #[arg(long)]
        expires: Option<String>,
        /// Whose token (admin only)
        #[arg(long)]
        user: Option<String>,
        /// Print {"id", "token", "name", "expires"} as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List your tokens (admin: `--user NAME`, or `--user '*'` for everyone's).
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `lifeline endpoint share`.
#[derive(Debug, Args)]
pub(crate) struct ShareArgs {
    /// The endpoint's name or id
    endpoint: String,
    /// The user to share it with
    #[arg(long, required_unless_present_any = ["public", "private"])]
    with: Option<String>,
    /// Open it to every user
    #[arg(long, conflicts_with = "private")]
    public: bool,
    /// Close it to users it is not shared with
    #[arg(long)]
    private: bool,
    #[command(flatten)]
    connection: Connection,
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(crate) async fn user(command: UserCommand) -> CliResult<()> {
    match command {
        UserCommand::Add {
            name,
            admin,
            json: as_json,
            connection,
        } => {
            let client = crate::client(connection)?;
            let created = client.add_user(&NewUser { name, admin }).await?;
            if as_json {
                println!("{}", json(&created));
            } else {
                println!("Added user {}. Their token (shown once):", created.user);
                println!("{}", created.token);
            }
        }
        UserCommand::List {
            json: as_json,
            connection,
        } => {
            let users = crate::client(connection)?.users().await?;
            if as_json {
                println!("{}", json(&users));
            } else {
                for u in users {
                    let role = if u.admin { "admin" } else { "user" };
                    println!(
                        "{:<24} {role:<5}  at most {} unfinished tasks, {} submissions/s",
                        u.user, u.max_queued, u.max_submits_per_sec
                    );
                }
            }
        }
        UserCommand::Remove { name, connection } => {
            crate::client(connection)?.remove_user(&name).await?;
            println!("Removed user {name}; their tokens no longer work.");
        }
        UserCommand::Quota(args) => {
            if args.max_queued.is_none() && args.max_submits_per_sec.is_none() {
                return Err(CliError::usage(
                    "say which quota to set: --max-queued N and/or --max-submits-per-sec R",
                ));
            }
            let quotas = UserQuotas {
                max_queued: args.max_queued,
                max_submits_per_sec: args.max_submits_per_sec,
            };
            let u = crate::client(args.connection)?
                .set_quotas(&args.name, &quotas)
                .await?;
            println!(
                "{}: at most {} unfinished tasks, {} submissions/s",
                u.user, u.max_queued, u.max_submits_per_sec
            );
        }
    }
    Ok(())
}

pub(crate) async fn token(command: TokenCommand) -> CliResult<()> {
    match command {
        TokenCommand::Create {
            name,
            expires,
            user,
            json: as_json,
            connection,
        } => {
            let client = crate::client(connection)?;
            let created = client
                .create_token(&NewToken {
                    name,
                    expires,
                    user,
                })
                .await?;
            if as_json {
                println!("{}", json(&created));
            } else {
                let until = created
                    .expires
                    .map(|t| format!(", until {}", crate::commands::utc(t.as_secs_f64())))
                    .unwrap_or_default();
                println!("Token {}{until} (shown once):", created.id);
                println!("{}", created.token);
            }
        }
        TokenCommand::List {
            user,
            json: as_json,
            connection,
        } => {
            let tokens = crate::client(connection)?
                .tokens(&TokenListQuery { user })
                .await?;
            if as_json {
                println!("{}", json(&tokens));
            } else {
                for t in tokens {
                    let until = t
                        .expires
                        .map(|at| crate::commands::utc(at.as_secs_f64()))
                        .unwrap_or_else(|| "never".into());
                    println!(
                        "{}  {:<16} {:<16} expires {until}",
                        t.id,
                        t.user,
                        t.name.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        TokenCommand::Revoke { id, connection } => {
            crate::client(connection)?.revoke_token(&id).await?;
            println!("Revoked token {id}.");
        }
    }
    Ok(())
}

pub(crate) async fn share(args: ShareArgs) -> CliResult<()> {
    let client: Client = crate::client(args.connection)?;
    let endpoint = endpoint_id(&client, &args.endpoint).await?;
    let public = match (args.public, args.private) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let shares = client
        .share_endpoint(
            endpoint,
            &ShareEndpoint {
                with: args.with,
                public,
            },
        )
        .await?;
    let who = if shares.shared_with.is_empty() {
        "nobody else".to_owned()
    } else {
        shares.shared_with.join(", ")
    };
    let public = if shares.public {
        "; every user may submit to it"
    } else {
        ""
    };
    println!(
        "{} (owned by {}) is shared with {who}{public}.",
        args.endpoint, shares.owner
    );
    Ok(())
}
