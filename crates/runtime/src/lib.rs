//! The runtime: every service of a `prossimo serve` started from one configuration, joined
//! by one [`Bus`], and stopped in order.
//!
//! The services and what they hear and say on the bus:
//!
//! | service    | hears                                                | says                          |
//! |------------|------------------------------------------------------|-------------------------------|
//! | writer     |                                                      | events committed (and buyers) |
//! | analyst    | events committed (buyers: re-score at once)          | computed traits changed       |
//! | decider    | events committed, computed traits, definitions       | memberships changed, outbox   |
//! | journeys   | events, memberships, computed traits, definitions    | messages owed                 |
//! | sender     | messages owed, messages changed                      | events committed (outcomes)   |
//! | bounces    | (SMTP: DSNs and complaints)                          | events committed (reports)    |
//! | dispatcher | outbox written, destinations changed                 |                               |
//! | HTTP edge  |                                                      | definitions changed, outbox   |
//!
//! Nothing here calls a service's work by name; a service added later (the journey
//! scheduler) subscribes to what it needs and is started and stopped here.

use std::sync::Arc;
use std::time::Duration;

use prossimo_act::{ActError, DispatchConfig, Dispatcher};
use prossimo_bus::Bus;
use prossimo_console::TrustedProxies;
use prossimo_decide::{Decider, DeciderConfig};
use prossimo_journeys::{JourneyRunner, RunnerConfig};
use prossimo_messages::{
    BounceListener, ChannelError, Channels, EmailConfig, MessageSender, SenderConfig, SmsConfig,
};
use prossimo_model::Limits;
use prossimo_server::{
    Analyst, AnalystConfig, AppState, Pipeline, PipelineConfig, PublicUrl, SendSettings,
    ServeConfig, SmsCallbacks,
};
use prossimo_store::Store;
use tokio::net::TcpListener;

/// Everything the services are configured with.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub limits: Limits,
    pub pipeline: PipelineConfig,
    pub analyst: AnalystConfig,
    pub decider: DeciderConfig,
    pub dispatch: DispatchConfig,
    pub serve: ServeConfig,
    pub public_url: Option<PublicUrl>,
    /// Proxies whose `X-Forwarded-For` names the client (the console's sign-in limits).
    pub trusted_proxies: TrustedProxies,
    /// How e-mail goes out; none: sends to e-mail are skipped (`channel_not_configured`).
    pub email: Option<EmailConfig>,
    /// How SMS go out; none: sends to SMS are skipped (`channel_not_configured`).
    pub sms: Option<SmsConfig>,
    pub sender: SenderConfig,
    pub journeys: RunnerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start a service thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("cannot start the dispatcher: {0}")]
    Dispatcher(#[from] ActError),
    #[error("cannot open a channel: {0}")]
    Channel(#[from] ChannelError),
    #[error("[email] bounce_listen: cannot listen on {address}: {source}")]
    BounceListen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot bring a feature's tables up to date: {0}")]
    Migration(#[from] prossimo_store::StoreError),
}

/// The tables of every feature, brought up to date before any service starts (each
/// feature would also do it on first use; at start a failed migration stops the server
/// instead of failing its first request).
pub const FEATURE_SCHEMAS: [&prossimo_store::Schema; 6] = [
    &prossimo_console::users::SCHEMA,
    &prossimo_act::destinations::SCHEMA,
    &prossimo_decide::audiences::SCHEMA,
    &prossimo_understand::reports::SCHEMA,
    // Before journeys: a journey's step owes its sends to the messages' outbox.
    &prossimo_messages::SCHEMA,
    &prossimo_journeys::SCHEMA,
];

/// The running services.
pub struct Runtime {
    store: Arc<Store>,
    bus: Bus,
    pipeline: Pipeline,
    analyst: Analyst,
    decider: Decider,
    journeys: JourneyRunner,
    sender: MessageSender,
    dispatcher: Dispatcher,
    bounces: Option<BounceListener>,
    config: RuntimeConfig,
}

/// What a stop achieved; `false` means that part was still busy when its time ran out
/// (nothing acknowledged is lost either way: the store has it, and the next start
/// carries on from the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub writer_drained: bool,
    pub decider_stopped: bool,
    pub journeys_stopped: bool,
    pub sender_stopped: bool,
    pub dispatcher_stopped: bool,
    pub analyst_stopped: bool,
}

impl Stopped {
    /// Every service stopped in time.
    pub fn all(&self) -> bool {
        self.writer_drained
            && self.decider_stopped
            && self.journeys_stopped
            && self.sender_stopped
            && self.dispatcher_stopped
            && self.analyst_stopped
    }
}

impl Runtime {
    /// Starts every service. Must run inside a Tokio runtime (the dispatcher's tasks live
    /// there).
    pub fn start(store: Arc<Store>, config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        for schema in FEATURE_SCHEMAS {
            store.migrate(schema)?;
        }
        let bus = Bus::new();
        let channels = Arc::new(Channels::open(config.email.as_ref(), config.sms.as_ref())?);
        let sender =
            MessageSender::start(Arc::clone(&store), channels, config.sender.clone(), &bus);
        let bounces = config
            .email
            .as_ref()
            .and_then(|email| email.bounce_listen.as_deref())
            .map(|address| {
                BounceListener::start(Arc::clone(&store), address, bus.clone()).map_err(|source| {
                    RuntimeError::BounceListen {
                        address: address.to_owned(),
                        source,
                    }
                })
            })
            .transpose()?;
        let dispatcher = Dispatcher::start(Arc::clone(&store), config.dispatch.clone(), &bus)?;
        let decider = Decider::spawn(
            Arc::clone(&store),
            store.clock(),
            config.decider.clone(),
            bus.clone(),
        );
        let journeys = JourneyRunner::spawn(
            Arc::clone(&store),
            store.clock(),
            config.journeys.clone(),
            &bus,
        );
        let analyst = Analyst::start(Arc::clone(&store), config.analyst, &bus)?;
        let pipeline = Pipeline::start(Arc::clone(&store), config.pipeline, bus.clone())?;
        Ok(Runtime {
            store,
            bus,
            pipeline,
            analyst,
            decider,
            journeys,
            sender,
            dispatcher,
            bounces,
            config,
        })
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// What the HTTP handlers share.
    pub fn app_state(&self) -> AppState {
        AppState::new(
            Arc::clone(&self.store),
            self.pipeline.clone(),
            self.config.limits,
            self.bus.clone(),
        )
        .with_public_url(self.config.public_url.clone())
        .with_targets(Arc::clone(&self.config.dispatch.targets))
        .with_trusted_proxies(self.config.trusted_proxies.clone())
        .with_analyst(self.analyst.clone())
        .with_decider(self.decider.clone())
        .with_send_settings(SendSettings {
            zone: self.config.journeys.zone,
            require_opt_in: self.config.sender.require_opt_in,
        })
        .with_sms_callbacks(self.config.sms.as_ref().and_then(|sms| {
            Some(SmsCallbacks {
                auth_token: sms.provider.as_ref()?.auth_token.clone(),
                base: sms.links_base.clone()?,
            })
        }))
    }

    /// Serves the API and the console on `listener` until `shutdown` resolves, then stops
    /// every service in order.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Stopped {
        let router = prossimo_server::app(self.app_state());
        prossimo_server::serve(listener, router, self.config.serve, shutdown).await;
        self.stop().await
    }

    /// Stops the services in the order data flows through them: the writer commits what
    /// was queued (every request is answered by now), the decider writes what it computed
    /// and gives its lease back, the journey runner writes its batch under way and gives its
    /// lease back, the sender hands over and records its round in flight and gives its
    /// lease back, the dispatcher records the rounds in flight and gives its
    /// lease back, the analyst stops after its current work. Each gets at most the
    /// configured grace.
    pub async fn stop(self) -> Stopped {
        let grace = self.config.serve.shutdown_grace;
        let Runtime {
            pipeline,
            analyst,
            decider,
            journeys,
            sender,
            dispatcher,
            bounces,
            ..
        } = self;
        // Sessions under way finish on their own: each report is recorded before its 250.
        if let Some(bounces) = bounces {
            blocking(grace, move || {
                bounces.stop();
                true
            })
            .await;
        }
        let writer_drained = blocking(grace, move || pipeline.drain(grace)).await;
        let decider_stopped = blocking(grace, move || {
            decider.stop();
            true
        })
        .await;
        let journeys_stopped = blocking(grace, move || {
            journeys.stop();
            true
        })
        .await;
        // A round of sends in flight is handed over and recorded (each SMTP exchange is
        // bounded by its timeout).
        let sender_stopped = tokio::time::timeout(grace, sender.stop()).await.is_ok();
        // A round in flight ends within one request timeout.
        let dispatcher_stopped = tokio::time::timeout(grace, dispatcher.stop()).await.is_ok();
        // A full analysis run may take minutes at a million customers: it is not waited
        // for long; what it wrote is kept and the next run redoes the rest.
        let patience = grace.min(Duration::from_secs(5));
        let analyst_stopped = blocking(patience, move || analyst.stop(patience)).await;
        let stopped = Stopped {
            writer_drained,
            decider_stopped,
            journeys_stopped,
            sender_stopped,
            dispatcher_stopped,
            analyst_stopped,
        };
        if stopped.all() {
            tracing::info!("every service stopped");
        } else {
            tracing::warn!(
                ?stopped,
                "some services were still busy when their time ran out"
            );
        }
        stopped
    }
}

/// Runs `work` on the blocking pool, waiting at most `patience` (plus a moment) for it.
async fn blocking(patience: Duration, work: impl FnOnce() -> bool + Send + 'static) -> bool {
    let task = tokio::task::spawn_blocking(work);
    matches!(
        tokio::time::timeout(patience + Duration::from_secs(1), task).await,
        Ok(Ok(true))
    )
}
