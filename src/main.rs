//! The `sluice` command: serve the control plane, migrate a database, mint keys.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::api::{CorsOrigins, Limits, RateLimits, DEFAULT_EVENT_BYTES_IN_FLIGHT};
use sluice::app::{Server, ServerOptions};
use sluice::control::planning::{self, PowerQuery};
use sluice::control::{KeyRequest, Keys, PublicUrl};
use sluice::control::{ReportOptions, ReportQuery, Retention};
use sluice::domain::{Actor, Role};
use sluice::report::Correction;
use sluice::web::CookieSecurity;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A/B tests and gradual rollouts with honest statistics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which users a report counts and how it breaks them down, as the API's query takes
/// them (`from`, `to`, `segment`, `dimension`).
#[derive(clap::Args)]
struct ReportFilterArgs {
    /// Only users first exposed at or after this date (midnight UTC) or RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Only users first exposed before this date or time.
    #[arg(long)]
    to: Option<String>,
    /// Only users with this kept dimension value, DIMENSION:VALUE (repeatable).
    #[arg(long = "segment")]
    segments: Vec<String>,
    /// Break down by one or two kept dimensions (country or country,device); the
    /// breakdown is in the json and csv formats.
    #[arg(long = "dimension")]
    dimensions: Vec<String>,
}

impl ReportFilterArgs {
    fn options(self) -> anyhow::Result<ReportOptions> {
        let query = ReportQuery {
            from: self.from,
            to: self.to,
            segments: self.segments,
            dimensions: self.dimensions,
            ..ReportQuery::default()
        };
        Ok(query.options()?)
    }
}

#[derive(clap::Args)]
struct DbArgs {
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST/DB;
    /// migrated on start.
    #[arg(long, env = "SLUICE_DB", default_value = "sqlite://sluice.db")]
    db: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on.
        #[arg(long, env = "SLUICE_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Seconds between two runs of the circuit breakers over running experiments
        /// (0 turns the loop off; on a shared PostgreSQL database such a server then
        /// never leads).
        #[arg(
            long = "guard-interval",
            env = "SLUICE_GUARD_INTERVAL_SECONDS",
            default_value_t = 60
        )]
        guard_interval_seconds: u64,
        /// Mark the dashboard's cookies `Secure` always: the server is reached over
        /// HTTPS only.
        #[arg(long, env = "SLUICE_SECURE_COOKIES")]
        secure_cookies: bool,
        /// Mark them `Secure` when the proxy in front says `X-Forwarded-Proto: https`
        /// (only behind a proxy that sets that header itself).
        #[arg(
            long,
            env = "SLUICE_TRUST_FORWARDED_PROTO",
            conflicts_with = "secure_cookies"
        )]
        trust_forwarded_proto: bool,
        /// Browser origins allowed to call the SDK endpoints: `*` (SDK keys are
        /// public and read-only) or a comma-separated list.
        #[arg(long, env = "SLUICE_CORS_ORIGINS", default_value = "*", value_parser = CorsOrigins::parse)]
        cors_origins: CorsOrigins,
        /// Requests per second each key may send to the SDK endpoints, in bursts of
        /// two seconds' worth (0: no limit); beyond it, 429 with Retry-After.
        #[arg(long, env = "SLUICE_SDK_RATE_LIMIT", default_value_t = RateLimits::default().sdk)]
        sdk_rate_limit: u32,
        /// The same for the management API (`/api/v1`).
        #[arg(long, env = "SLUICE_API_RATE_LIMIT", default_value_t = RateLimits::default().management)]
        api_rate_limit: u32,
        /// Store user ids as keyed hashes (HMAC-SHA256 with a secret kept in the
        /// database), in events and aggregates alike; assignment is unchanged.
        /// Turn it on before the first events arrive.
        #[arg(long, env = "SLUICE_PSEUDONYMIZE_USERS")]
        pseudonymize_users: bool,
        /// Delete raw events older than this many days once nothing reads them
        /// again (reports read aggregates and stay); events that old are not
        /// counted. Kept for ever without it.
        #[arg(long, env = "SLUICE_RETAIN_EVENTS_DAYS")]
        retain_events_days: Option<u32>,
        /// How many bytes of event batches may be received but not yet stored at
        /// once; beyond it a batch waits a second, then gets 503 with Retry-After.
        #[arg(long, env = "SLUICE_MAX_EVENT_BYTES_IN_FLIGHT", default_value_t = DEFAULT_EVENT_BYTES_IN_FLIGHT)]
        max_event_bytes_in_flight: usize,
        /// How many seconds ahead of this server's clock an event may be stamped;
        /// a batch with one further ahead is refused (400).
        #[arg(long, env = "SLUICE_MAX_EVENT_SKEW_SECONDS", default_value_t = 86_400)]
        max_event_skew_seconds: u64,
        /// The dashboard's address as people reach it (https://ab.example.com),
        /// for the links in chat messages; default http:// and the listen address.
        #[arg(long, env = "SLUICE_PUBLIC_URL", value_parser = PublicUrl::parse)]
        public_url: Option<PublicUrl>,
    },
    /// Create or upgrade the database schema.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print an experiment's significance report.
    Report {
        /// The experiment key.
        experiment: String,
        /// table (80 columns), json or csv.
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
        format: String,
        /// Correct p-values across metrics and variants: holm or bh.
        #[arg(long, value_parser = parse_correction)]
        correction: Option<Correction>,
        #[command(flatten)]
        filter: ReportFilterArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Plan an experiment: users per variant for an effect, or the effect for a sample.
    Power {
        /// Baseline conversion rate (or mean, with --variance).
        #[arg(long)]
        baseline: f64,
        /// Per-user variance of a mean metric (omit for conversion rates).
        #[arg(long)]
        variance: Option<f64>,
        /// Relative minimum detectable effect, e.g. 0.05 for 5%.
        #[arg(long, conflicts_with = "users", required_unless_present = "users")]
        mde: Option<f64>,
        /// Users per variant, to get the minimum detectable effect instead.
        #[arg(long)]
        users: Option<f64>,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        #[arg(long, default_value_t = 0.8)]
        power: f64,
        /// Number of variants, control included.
        #[arg(long, default_value_t = 2)]
        variants: usize,
    },
    /// A one-minute tour on a temporary database: a price test, simulated traffic, the
    /// report, the breaker rolling the bad price back, the audit trail.
    Demo,
    /// Monte Carlo of the circuit breaker: false rollbacks under peeking, and how
    /// fast real harm is caught (prints a Markdown table).
    Simulate {
        /// Runs per scenario.
        #[arg(long, default_value_t = 1000)]
        runs: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print it alone on stdout (it is shown once; only a hash is kept).
    Create {
        /// admin, editor, analyst or sdk.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The environment an sdk key serves (default production).
        #[arg(long)]
        env: Option<String>,
        /// A name for the audit log (default: role and a short id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_correction(text: &str) -> Result<Correction, String> {
    Correction::parse(text).ok_or_else(|| "expected holm or bh".to_owned())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "expected admin, editor, analyst or sdk".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A server logs what it does. Other commands print their own results and log
    // only what went wrong; the demo tells the guard's actions itself, so its
    // story is not interleaved with the same events as log lines.
    let default_filter = match cli.command {
        Command::Serve { .. } => "info,sqlx=warn",
        Command::Demo => "error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve {
            db,
            addr,
            guard_interval_seconds,
            secure_cookies,
            trust_forwarded_proto,
            cors_origins,
            sdk_rate_limit,
            api_rate_limit,
            max_event_skew_seconds,
            max_event_bytes_in_flight,
            pseudonymize_users,
            retain_events_days,
            public_url,
        } => {
            let cookies = match (secure_cookies, trust_forwarded_proto) {
                (true, _) => CookieSecurity::Always,
                (false, true) => CookieSecurity::ForwardedProto,
                (false, false) => CookieSecurity::Plain,
            };
            let options = ServerOptions {
                cookies,
                cors_origins,
                limits: Limits {
                    rates: RateLimits {
                        sdk: sdk_rate_limit,
                        management: api_rate_limit,
                    },
                    event_bytes_in_flight: max_event_bytes_in_flight,
                },
                max_event_skew: Duration::from_secs(max_event_skew_seconds),
                pseudonymize_users,
                retention: retain_events_days.map(Retention::days).unwrap_or_default(),
                public_url: public_url.unwrap_or_else(|| PublicUrl::of_listener(addr)),
                stand_aside: guard_interval_seconds == 0,
            };
            serve(&db.db, addr, guard_interval_seconds, options).await
        }
        Command::Migrate { db } => {
            sluice::store::open(&db.db)
                .await
                .with_context(|| format!("migrating {}", db.db))?;
            eprintln!("database {} is up to date", db.db);
            Ok(())
        }
        Command::Report {
            experiment,
            format,
            correction,
            filter,
            db,
        } => {
            let options = ReportOptions {
                correction,
                ..filter.options()?
            };
            report(&db.db, &experiment, &format, options).await
        }
        Command::Power {
            baseline,
            variance,
            mde,
            users,
            alpha,
            power,
            variants,
        } => plan(&PowerQuery {
            baseline,
            variance,
            mde,
            users,
            alpha,
            power,
            variants,
        }),
        Command::Demo => sluice::demo::run().await,
        Command::Simulate { runs, seed } => {
            let config = sluice::guard::simulate::SimulationConfig {
                runs,
                seed,
                scale: 1.0,
            };
            let results = sluice::guard::simulate::run(&config);
            print!("{}", sluice::guard::simulate::table(&results));
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    role,
                    env,
                    name,
                    db,
                },
        } => {
            let store = sluice::store::open(&db.db)
                .await
                .with_context(|| format!("opening {}", db.db))?;
            let request = KeyRequest {
                role,
                name,
                environment: env,
            };
            let (secret, _) = Keys::new(store)
                .create(request, &Actor::Cli)
                .await
                .context("creating the key")?;
            println!("{secret}");
            Ok(())
        }
    }
}

async fn report(
    db: &str,
    experiment: &str,
    format: &str,
    options: ReportOptions,
) -> anyhow::Result<()> {
    let store = sluice::store::open(db)
        .await
        .with_context(|| format!("opening {db}"))?;
    let report = sluice::control::experiment_report(store.as_ref(), experiment, options)
        .await
        .with_context(|| format!("reporting on {experiment}"))?;
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        "csv" => print!("{}", sluice::report::to_csv(&report)),
        _ => print!("{}", sluice::report::to_table(&report)),
    }
    Ok(())
}

fn plan(query: &PowerQuery) -> anyhow::Result<()> {
    let answer = planning::plan(query)?;
    match answer.total_users {
        Some(total) => println!(
            "users per variant: {} ({total} in total) to detect {:+.2}% at alpha {}, power {}",
            answer.users_per_variant,
            answer.mde * 100.0,
            answer.alpha,
            answer.power
        ),
        None => println!(
            "smallest detectable relative effect with {} users per variant: {:.2}%",
            answer.users_per_variant,
            answer.mde * 100.0
        ),
    }
    Ok(())
}

async fn serve(
    db: &str,
    addr: SocketAddr,
    guard_interval_seconds: u64,
    options: ServerOptions,
) -> anyhow::Result<()> {
    let store = sluice::store::open(db)
        .await
        .with_context(|| format!("opening {db}"))?;
    let server = Server::build_with(store, options)
        .await
        .context("loading the ruleset")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, db, "sluice is serving");
    if guard_interval_seconds > 0 {
        server.spawn_guard(std::time::Duration::from_secs(guard_interval_seconds));
    }
    let shutdown = server.shutdown.clone();
    axum::serve(listener, server.router.clone())
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            shutdown.send_replace(true);
        })
        .await
        .context("serving")?;
    server.finish().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
