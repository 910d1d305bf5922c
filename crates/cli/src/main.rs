//! `prossimo`: the one binary. Thin: it reads settings, opens the store and calls the crates.

mod analyze;
mod config;
mod demo;
mod import;
mod journey;
mod layered;
mod segment;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use config::Settings;
use prossimo_decide::DeciderConfig;
use prossimo_runtime::{Runtime, RuntimeConfig};
use prossimo_server::PublicUrl;
use prossimo_store::{ProfileKey, Store};
use tracing_subscriber::EnvFilter;

/// The decider holds every profile's aggregates and allocates per event and per membership
/// change: with the system allocator it spent about 40% of its time in malloc and free at
/// 10,000 events/s (BENCHMARKS.md, "Audiences").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "prossimo",
    version,
    about = "Customer data and engagement platform: every touchpoint in one customer view",
    long_about = "Prossimo collects Segment-spec events from web, app, stores and call centre, \
resolves identities into one profile per person, and serves the customer 360.\n\n\
Start with `prossimo serve` (embedded store in ./prossimo-data), or `prossimo demo` to fill \
a store with a synthetic Italian retailer first."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Settings come from `prossimo.toml`, then `PROSSIMO_*` variables, then flags, each
/// overriding the one before; `prossimo config` shows them all.
#[derive(Args)]
struct Global {
    /// Directory of the embedded store [setting data_dir; env PROSSIMO_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL connection string (scale-out); wins over --data-dir [setting database;
    /// env PROSSIMO_DATABASE].
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// Configuration file [default: ./prossimo.toml when present].
    #[arg(long, global = true, env = "PROSSIMO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Any setting, e.g. `--set ingest.max_batch_bytes=2000000` (repeat for more); its
    /// variable is PROSSIMO_INGEST__MAX_BATCH_BYTES. `prossimo config` lists the keys.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = config::FlagValue::parse)]
    set: Vec<config::FlagValue>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (Segment tracking API, customer 360, /health, /metrics).
    Serve(ServeArgs),
    /// Manage sources (write keys) and admin tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import history from CSV or NDJSON: events, customers or orders.
    Import(import::ImportArgs),
    /// Fill the store with a seeded synthetic Italian retailer, through the real ingest path.
    Demo(demo::DemoArgs),
    /// Compute RFM, CLV and P(alive), cohorts, base dynamics and customer groups; write the
    /// computed traits onto the profiles.
    Analyze(analyze::AnalyzeArgs),
    /// Audiences in the segment language: validate, preview, save, list, members.
    #[command(subcommand)]
    Segment(segment::SegmentCommand),
    /// Journeys (docs/journeys.md): validate, save, publish, list, show, pause, resume,
    /// archive.
    #[command(subcommand)]
    Journey(journey::JourneyCommand),
    /// Console users: list, create, set-password, set-role, disable, enable.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Print one customer 360 profile as JSON (KEY: profile id or kind:value).
    Profile { key: String },
    /// Print the settings in force (file, PROSSIMO_* variables and flags over the
    /// defaults), with the database password hidden.
    Config,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [setting listen; env PROSSIMO_LISTEN].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Make sure a source with this write key exists (for scripts).
    #[arg(
        long,
        env = "PROSSIMO_WRITE_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    write_key: Option<String>,
    /// Make sure this admin token exists (for scripts).
    #[arg(
        long,
        env = "PROSSIMO_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Password of the console's first admin (admin@localhost), used only when the store
    /// has no console user yet; otherwise one is generated and printed once.
    #[arg(
        long,
        env = "PROSSIMO_ADMIN_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    admin_password: Option<String>,
    /// Where browsers reach this server (behind a proxy or TLS), e.g.
    /// https://track.shop.example.it; the browser SDK's settings point there. Default: the
    /// address each request came to, over HTTP [setting public_url; env PROSSIMO_PUBLIC_URL].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Fill an empty store with the demo retailer (`prossimo demo`) before serving, so the
    /// console has customers, audiences and analytics to explore; a store with data is
    /// left as it is.
    #[arg(long, env = "PROSSIMO_DEMO")]
    demo: bool,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List sources and admin tokens.
    List,
    /// Create a source; prints its write key.
    CreateSource {
        name: String,
        /// Use this write key instead of a generated one.
        #[arg(long)]
        write_key: Option<String>,
        /// A web page allowed to send with this key from a browser, like
        /// https://shop.example.it (repeat for more); without any, every page may.
        #[arg(long = "allowed-origin", value_name = "ORIGIN")]
        allowed_origins: Vec<String>,
    },
    /// Set the web pages (origins) allowed to send with a source's key from a browser.
    SetOrigins {
        name: String,
        /// Origins like https://shop.example.it; `null` for pages opened from a file.
        #[arg(required_unless_present = "any", conflicts_with = "any")]
        origins: Vec<String>,
        /// Let every page send (the default for a new source).
        #[arg(long)]
        any: bool,
    },
    /// Stop accepting a source's write key.
    RevokeSource { name: String },
    /// Create an admin token; prints it (the only time it is shown).
    CreateToken { name: String },
    /// Revoke an admin token by id (see `keys list`).
    RevokeToken { id: i64 },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `prossimo segment members x | head` would panic on the closed
/// pipe; a command that prints should end quietly like any other Unix filter. (The server
/// keeps Rust's default.)
#[allow(unsafe_code)] // one libc call, reasoned below
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called before any thread is started; it only resets one signal's
    // disposition to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        restore_default_sigpipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PROSSIMO_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,refinery_core=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // The named flags are settings too, the last layer over file and variables.
    let mut flags = cli.global.set.clone();
    let named = [
        (
            "data_dir",
            cli.global
                .data_dir
                .as_ref()
                .map(|d| d.display().to_string()),
        ),
        ("database", cli.global.database.clone()),
    ];
    let serve_named = match &cli.command {
        Command::Serve(args) => [
            ("listen", args.listen.clone()),
            ("public_url", args.public_url.clone()),
        ],
        _ => [("listen", None), ("public_url", None)],
    };
    for (key, value) in named.into_iter().chain(serve_named) {
        if let Some(value) = value {
            flags.push(config::FlagValue {
                key: key.to_owned(),
                value,
            });
        }
    }
    let file = Settings::load(cli.global.config.as_deref(), std::env::vars(), &flags)?;
    if let Command::Config = cli.command {
        print!("{}", file.to_redacted_toml()?);
        return Ok(());
    }
    let location = file.location();
    let store = Arc::new(
        Store::open_with(&location, file.identity()?, file.store_options()?)
            .with_context(|| format!("cannot open the store at {}", location.describe()))?
            .with_money(file.money()?),
    );
    match cli.command {
        Command::Serve(args) => serve(store, &file, args),
        Command::Keys(cmd) => keys(&store, cmd),
        Command::Import(args) => import::run(&store, &file, args),
        Command::Demo(args) => demo::run(&store, &file, args),
        Command::Analyze(args) => analyze::run_command(&store, args),
        Command::Segment(cmd) => segment::run(&store, cmd),
        Command::Journey(cmd) => journey::run(&store, cmd),
        Command::Users(cmd) => users::run(&store, cmd),
        Command::Config => Ok(()),
        Command::Profile { key } => {
            let key = ProfileKey::parse(&key, store.identity()).map_err(anyhow::Error::msg)?;
            match prossimo_view::customer(&store, &key)? {
                Some(p) => println!("{}", serde_json::to_string_pretty(&p)?),
                None => bail!("no profile for that key"),
            }
            Ok(())
        }
    }
}

fn serve(store: Arc<Store>, file: &Settings, args: ServeArgs) -> Result<()> {
    let listen = &file.listen;
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    let boot = store.bootstrap(args.write_key.as_deref(), args.admin_token.as_deref())?;
    if args.demo && store.profile_count()? == 0 {
        println!("demo:        filling the empty store with the demo retailer…");
        demo::run(&store, file, demo::DemoArgs::default())?;
    }
    println!("store:       {}", store.location().describe());
    println!(
        "write key:   {} (source {:?})",
        boot.source.write_key, boot.source.name
    );
    if let Some(token) = &boot.new_admin_token {
        println!("admin token: {token}  (shown once; `prossimo keys create-token` makes more)");
    }
    let first_admin = prossimo_console::ensure_first_admin(&store, args.admin_password.as_deref())
        .context("cannot create the console's first admin")?;
    let public_url = file
        .public_url
        .as_deref()
        .map(|url| PublicUrl::parse(url).map_err(anyhow::Error::msg))
        .transpose()
        .context("public_url")?;
    let config = RuntimeConfig {
        limits: file.limits()?,
        pipeline: file.pipeline(),
        analyst: file.analyst()?,
        decider: DeciderConfig::default(),
        dispatch: file.dispatch()?,
        serve: file.serve()?,
        public_url,
        trusted_proxies: file.trusted_proxies()?,
        email: Some(file.email()?),
        sms: Some(file.sms()?),
        sender: file.sender()?,
        journeys: prossimo_journeys::RunnerConfig {
            zone: file.zone()?,
            ..prossimo_journeys::RunnerConfig::default()
        },
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The dispatcher's tasks live on this runtime.
    let _entered = tokio.enter();
    let services = Runtime::start(store, config)?;
    tokio.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let address = listener.local_addr()?;
        println!("listening:   http://{address}");
        println!("console:     http://{address}/");
        match &first_admin {
            prossimo_console::FirstAdmin::Created {
                generated: Some(password),
            } => println!(
                "sign in as:  {} / {password}  (shown once; `prossimo users` manages users)",
                prossimo_console::FIRST_ADMIN
            ),
            prossimo_console::FirstAdmin::Created { generated: None } => println!(
                "sign in as:  {} with the password given in PROSSIMO_ADMIN_PASSWORD",
                prossimo_console::FIRST_ADMIN
            ),
            prossimo_console::FirstAdmin::Existing => {}
        }
        tracing::info!(%addr, "serving");
        services.serve(listener, shutdown_signal()).await;
        Ok(())
    })
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM (systemd, Kubernetes, `docker stop`).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

fn keys(store: &Store, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::List => {
            println!("sources:");
            for s in store.sources()? {
                let state = if s.revoked { "revoked" } else { "active" };
                let pages = s
                    .allowed_origins
                    .map_or_else(|| "any page".to_owned(), |list| list.join(" "));
                println!("  {:<20} {}  {state}  {pages}", s.name, s.write_key);
            }
            println!("admin tokens:");
            for t in store.admin_tokens()? {
                let state = if t.revoked { "revoked" } else { "active" };
                println!("  {:>4}  {:<20} {}…  {state}", t.id, t.name, t.prefix);
            }
        }
        KeysCommand::CreateSource {
            name,
            write_key,
            allowed_origins,
        } => {
            // Checked before anything is created, so a typo leaves no source behind.
            for origin in &allowed_origins {
                prossimo_store::normalise_origin(origin).map_err(anyhow::Error::msg)?;
            }
            let mut s = store.create_source(&name, write_key.as_deref())?;
            if !allowed_origins.is_empty() {
                s = store.set_source_origins(&name, Some(&allowed_origins))?;
            }
            println!("{}", s.write_key);
        }
        KeysCommand::SetOrigins { name, origins, any } => {
            let s = store.set_source_origins(&name, (!any).then_some(origins.as_slice()))?;
            match s.allowed_origins {
                None => println!("source {name:?}: any page may send"),
                Some(list) => println!("source {name:?}: pages from {}", list.join(", ")),
            }
        }
        KeysCommand::RevokeSource { name } => {
            store.revoke_source(&name)?;
            println!("revoked source {name:?}");
        }
        KeysCommand::CreateToken { name } => println!("{}", store.create_admin_token(&name, None)?),
        KeysCommand::RevokeToken { id } => {
            store.revoke_admin_token(id)?;
            println!("revoked admin token {id}");
        }
    }
    Ok(())
}
