//! The console's words in English and Italian. One struct per language keeps every page's
//! text checked at compile time: a template that names a missing text does not build.

use axum::http::HeaderMap;

use crate::auth::cookie;

/// Cookie that remembers the language a person chose with `?lang=`.
pub const LANG_COOKIE: &str = "prossimo_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    It,
}

impl Lang {
    /// The language of the segment language's messages.
    pub fn segments(self) -> prossimo_segments::Language {
        match self {
            Lang::En => prossimo_segments::Language::English,
            Lang::It => prossimo_segments::Language::Italian,
        }
    }

    /// Thousands and decimal separators: 1,234.50 in English, 1.234,50 in Italian.
    fn separators(self) -> (char, char) {
        match self {
            Lang::En => (',', '.'),
            Lang::It => ('.', ','),
        }
    }

    /// `v` with `decimals` decimals, grouped by thousands, in this language's way.
    pub fn fixed(self, v: f64, decimals: usize) -> String {
        if !v.is_finite() {
            return v.to_string();
        }
        let (group, decimal) = self.separators();
        let text = format!("{:.*}", decimals, v.abs());
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let negative = v < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0');
        let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
        if negative {
            out.push('-');
        }
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(group);
            }
            out.push(digit);
        }
        if !fraction.is_empty() {
            out.push(decimal);
            out.push_str(fraction);
        }
        out
    }

    /// A figure on a page: whole numbers without decimals, others with two.
    pub fn number(self, v: f64) -> String {
        self.fixed(v, if v.fract() == 0.0 { 0 } else { 2 })
    }

    /// A count of things.
    pub fn count(self, n: u64) -> String {
        self.fixed(n as f64, 0)
    }

    /// A share 0–1 as a whole percentage.
    pub fn percent(self, share: f64) -> String {
        format!("{}%", self.fixed(share * 100.0, 0))
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().get(..2)? {
            "en" => Some(Lang::En),
            "it" => Some(Lang::It),
            _ => None,
        }
    }

    /// `?lang=` first, then the remembered choice, then the browser's preference.
    pub fn choose(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                let accept = headers.get("accept-language")?.to_str().ok()?;
                preferred(accept)
            })
            .unwrap_or(Lang::En)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::It => &IT,
        }
    }

    /// The other language, for the switcher.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::It,
            Lang::It => Lang::En,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::It => "Italiano",
        }
    }
}

/// The supported language an `Accept-Language` header prefers most (by `q`, then order).
fn preferred(accept: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Lang::parse) else {
            continue;
        };
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

pub struct Texts {
    pub product_tagline: &'static str,
    pub nav_customers: &'static str,
    pub nav_main: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub bad_credentials: &'static str,
    pub too_many_attempts: &'static str,
    pub form_expired: &'static str,
    pub signed_in_as: &'static str,
    pub search_customers: &'static str,
    pub search_label: &'static str,
    pub search_hint: &'static str,
    pub search: &'static str,
    pub no_results: &'static str,
    pub last_run_failed: &'static str,
    pub last_run_problems: &'static str,
    pub run_again: &'static str,
    pub run_requested: &'static str,
    /// Beside a period that had not ended when the analyses ran.
    pub period_in_progress: &'static str,
    /// Before the range of results shown: "Results 26–50".
    pub results_shown: &'static str,
    /// After it, when more follow: "of more".
    pub results_more: &'static str,
    pub next_results: &'static str,
    pub previous_results: &'static str,
    pub name: &'static str,
    pub user_id: &'static str,
    pub last_seen: &'static str,
    pub first_seen: &'static str,
    pub matched: &'static str,
    pub unnamed: &'static str,
    pub overview: &'static str,
    pub events: &'static str,
    pub orders: &'static str,
    pub revenue: &'static str,
    pub first_channel: &'static str,
    pub traits: &'static str,
    pub no_traits: &'static str,
    pub identifiers: &'static str,
    pub kind: &'static str,
    pub value: &'static str,
    pub since: &'static str,
    pub identity_history: &'static str,
    pub no_identity_history: &'static str,
    pub merged_profiles: &'static str,
    pub understanding: &'static str,
    pub not_analysed: &'static str,
    pub segments: &'static str,
    pub no_segments: &'static str,
    pub member_since: &'static str,
    pub messages: &'static str,
    pub consent: &'static str,
    pub no_consent: &'static str,
    pub opted_in: &'static str,
    pub opted_out: &'static str,
    pub every_topic: &'static str,
    pub no_messages: &'static str,
    pub left_on: &'static str,
    pub channel_mix: &'static str,
    pub timeline: &'static str,
    pub all_channels: &'static str,
    pub all_types: &'static str,
    pub channel: &'static str,
    pub type_: &'static str,
    pub event_name: &'static str,
    pub filter: &'static str,
    pub time: &'static str,
    pub what: &'static str,
    pub details: &'static str,
    pub older: &'static str,
    pub newest: &'static str,
    pub no_events: &'static str,
    pub not_found: &'static str,
    pub customer_not_found: &'static str,
    pub back_to_search: &'static str,
    pub forbidden: &'static str,
    pub error_title: &'static str,
    pub error_text: &'static str,
    pub bad_request: &'static str,
    /// A change that clashes with what is stored (someone else changed it meanwhile).
    pub conflict: &'static str,
    pub skip_to_content: &'static str,
    pub rfm_title: &'static str,
    pub p_alive_title: &'static str,
    pub p_alive_text: &'static str,
    pub clv_title: &'static str,
    pub clv_text: &'static str,
    pub expected_title: &'static str,
    pub expected_text: &'static str,
    pub cluster_title: &'static str,
    pub cluster_text: &'static str,
    pub rfm_score_text: &'static str,
    pub nav_audiences: &'static str,
    pub audiences_not_live: &'static str,
    pub audiences_standby: &'static str,
    pub audiences_rebuilding: &'static str,
    pub new_audience: &'static str,
    pub audience_not_found: &'static str,
    pub no_audiences: &'static str,
    pub size: &'static str,
    pub trend: &'static str,
    pub updated: &'static str,
    pub description: &'static str,
    pub definition: &'static str,
    pub slug: &'static str,
    pub slug_hint: &'static str,
    pub definition_hint: &'static str,
    pub check: &'static str,
    pub preview: &'static str,
    pub save: &'static str,
    pub edit: &'static str,
    pub delete: &'static str,
    pub members: &'static str,
    pub more_members: &'static str,
    pub history: &'static str,
    pub entered: &'static str,
    pub exited: &'static str,
    pub valid_definition: &'static str,
    pub matching_now: &'static str,
    pub took: &'static str,
    pub sample: &'static str,
    pub line: &'static str,
    pub column: &'static str,
    pub size_over_time: &'static str,
    pub read_only: &'static str,
    pub not_saved: &'static str,
    pub checking: &'static str,
    pub points: &'static str,
    pub nav_analytics: &'static str,
    pub analytics_as_of: &'static str,
    pub analytics_never: &'static str,
    pub buyers: &'static str,
    pub repeat_buyers: &'static str,
    pub mean_p_alive: &'static str,
    pub total_clv: &'static str,
    pub chart_growth: &'static str,
    pub chart_growth_caption: &'static str,
    pub chart_new_returning: &'static str,
    pub chart_new_returning_caption: &'static str,
    pub chart_cohorts: &'static str,
    pub chart_cohorts_caption: &'static str,
    pub chart_rfm: &'static str,
    pub chart_rfm_caption: &'static str,
    pub chart_clv: &'static str,
    pub chart_clv_caption: &'static str,
    pub chart_p_alive: &'static str,
    pub chart_p_alive_caption: &'static str,
    pub chart_churn: &'static str,
    pub chart_churn_caption: &'static str,
    pub chart_channels: &'static str,
    pub chart_channels_caption: &'static str,
    pub chart_holdout: &'static str,
    pub chart_holdout_caption: &'static str,
    pub holdout_missing: &'static str,
    pub not_computed: &'static str,
    pub customers_total: &'static str,
    pub active: &'static str,
    pub new_customers: &'static str,
    pub returning_customers: &'static str,
    pub cohort: &'static str,
    pub recency_frequency: &'static str,
    pub share_of_customers: &'static str,
    pub share_of_value: &'static str,
    pub churn_rate: &'static str,
    pub loyalty_rate: &'static str,
    pub offline_interactions: &'static str,
    pub offline_revenue: &'static str,
    pub actual: &'static str,
    pub predicted: &'static str,
    pub totals: &'static str,
    pub chart_data: &'static str,
    pub no_purchases_yet: &'static str,
    pub profiles_in_store: &'static str,
    pub nav_live: &'static str,
    pub live_intro: &'static str,
    pub live_empty: &'static str,
    pub accepted: &'static str,
    pub refused: &'static str,
    pub source: &'static str,
    pub who: &'static str,
    pub outcome: &'static str,
    pub more_messages: &'static str,
    pub pause: &'static str,
    pub resume: &'static str,
    pub nav_settings: &'static str,
    pub sources: &'static str,
    pub sources_hint: &'static str,
    pub write_key: &'static str,
    pub created: &'static str,
    pub state: &'static str,
    pub active_state: &'static str,
    pub revoked_state: &'static str,
    pub disabled_state: &'static str,
    pub revoke: &'static str,
    pub add_source: &'static str,
    pub add: &'static str,
    pub tokens: &'static str,
    pub tokens_hint: &'static str,
    pub new_token_once: &'static str,
    pub create_token: &'static str,
    pub users: &'static str,
    pub role: &'static str,
    pub change: &'static str,
    pub disable: &'static str,
    pub enable: &'static str,
    pub add_user: &'static str,
    pub password_rule: &'static str,
    pub destinations: &'static str,
    pub destinations_hint: &'static str,
    pub kind_label: &'static str,
    pub enabled: &'static str,
    pub pending: &'static str,
    pub dead_letters: &'static str,
    pub deliveries: &'static str,
    pub all: &'static str,
    pub delivered: &'static str,
    pub attempts: &'static str,
    pub replay_dead: &'static str,
    pub replayed: &'static str,
    pub no_deliveries: &'static str,
    pub last_error: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub done_source: &'static str,
    pub done_origins: &'static str,
    /// The column of the web pages that may use a source's key from a browser.
    pub allowed_pages: &'static str,
    pub any_page: &'static str,
    pub allowed_pages_hint: &'static str,
    pub done_revoked: &'static str,
    pub done_user: &'static str,
    pub done_role: &'static str,
    pub done_state: &'static str,
    pub done_saved: &'static str,
    pub canonical_prefix: &'static str,
    pub no_destinations: &'static str,
    pub busy: &'static str,
    pub similar_refusals: &'static str,
    pub nav_journeys: &'static str,
    pub new_journey: &'static str,
    pub journey_not_found: &'static str,
    pub no_journeys: &'static str,
    pub journey_state: &'static str,
    pub journeys_entered: &'static str,
    pub journeys_active: &'static str,
    pub converted: &'static str,
    pub state_draft: &'static str,
    pub state_published: &'static str,
    pub state_paused: &'static str,
    pub state_archived: &'static str,
    pub version: &'static str,
    pub publish: &'static str,
    pub journey_pause: &'static str,
    pub journey_resume: &'static str,
    pub archive: &'static str,
    pub waiting_here: &'static str,
    pub passed: &'static str,
    pub exits: &'static str,
    pub versions: &'static str,
    pub journey_history: &'static str,
    pub live_counts: &'static str,
    pub journey_hint: &'static str,
    pub valid_journey: &'static str,
    pub steps_word: &'static str,
    pub drawing_draft: &'static str,
    pub drawing_version: &'static str,
    pub draft_differs: &'static str,
    pub by: &'static str,
    pub send_message: &'static str,
    pub send_message_hint: &'static str,
    pub message_word: &'static str,
    pub topic_word: &'static str,
    pub send_now: &'static str,
    pub broadcasts_title: &'static str,
    pub no_message_written: &'static str,
    pub start_journey: &'static str,
    pub owed_word: &'static str,
    pub nav_messages: &'static str,
    pub new_message: &'static str,
    pub message_not_found: &'static str,
    pub no_messages_written: &'static str,
    pub no_such_customer: &'static str,
    pub preview_gone: &'static str,
    pub channel_word: &'static str,
    pub subject_word: &'static str,
    pub format_word: &'static str,
    pub destination_word: &'static str,
    pub body_word: &'static str,
    pub body_hint: &'static str,
    pub preview_for: &'static str,
    pub preview_for_hint: &'static str,
    pub event_json: &'static str,
    pub text_part: &'static str,
    pub html_part: &'static str,
    pub as_customer_gets_it: &'static str,
    pub dry_run: &'static str,
    pub dry_run_over: &'static str,
    pub dry_run_button: &'static str,
    pub dry_run_hint: &'static str,
    pub would_enter: &'static str,
    pub not_entering: &'static str,
    pub would_go: &'static str,
    pub would_skip: &'static str,
    pub would_wait: &'static str,
    pub would_end: &'static str,
    pub waiting_at: &'static str,
    pub journey_ended: &'static str,
    pub journey_entering: &'static str,
    pub in_no_journey: &'static str,
}

pub static EN: Texts = Texts {
    product_tagline: "Customer data and engagement",
    nav_customers: "Customers",
    nav_main: "Main",
    sign_in: "Sign in",
    sign_out: "Sign out",
    email: "E-mail",
    password: "Password",
    bad_credentials: "Wrong e-mail or password.",
    too_many_attempts: "Too many failed sign-ins for this account. Try again in a few minutes.",
    form_expired: "The form expired. Please sign in again.",
    signed_in_as: "Signed in as",
    search_customers: "Find a customer",
    search_label: "Identifier or name",
    search_hint: "A name, e-mail, phone, user id or anonymous id, or the start of one; kind:value (email:anna@example.it) for an exact identifier.",
    search: "Search",
    no_results: "No customer matches.",
    period_in_progress: "so far",
    last_run_failed: "The last analysis run failed; the charts show the run before it.",
    last_run_problems: "The last analysis run could not compute everything:",
    run_again: "Run the analyses again",
    run_requested: "A new analysis run was asked for; this page shows its results once it is done.",
    results_shown: "Customers",
    results_more: "and more: refine the search or see the next page",
    next_results: "Next",
    previous_results: "Previous",
    name: "Name",
    user_id: "User id",
    last_seen: "Last seen",
    first_seen: "First seen",
    matched: "Matched",
    unnamed: "(no name)",
    overview: "Overview",
    events: "Events",
    orders: "Orders",
    revenue: "Net revenue",
    first_channel: "First channel",
    traits: "Traits",
    no_traits: "No traits yet.",
    identifiers: "Identifiers",
    kind: "Kind",
    value: "Value",
    since: "Since",
    identity_history: "Identity history",
    no_identity_history: "No merges, refused merges or ignored identifiers.",
    merged_profiles: "Profiles merged into this one",
    understanding: "What we know",
    not_analysed: "Not analysed yet: run the analyses (prossimo analyze, or wait for the scheduled run).",
    segments: "Audiences",
    no_segments: "In no audience.",
    member_since: "member since",
    messages: "Messages",
    consent: "Consent",
    no_consent: "No choice recorded: marketing goes unless opt-in is required.",
    opted_in: "opted in",
    opted_out: "opted out",
    every_topic: "every topic",
    no_messages: "No message sent yet.",
    left_on: "left on",
    channel_mix: "Channel mix",
    timeline: "Timeline",
    all_channels: "All channels",
    all_types: "All types",
    channel: "Channel",
    type_: "Type",
    event_name: "Event name",
    filter: "Filter",
    time: "Time (UTC)",
    what: "What",
    details: "Details",
    older: "Older events",
    newest: "Newest events",
    no_events: "No events match.",
    not_found: "Not found",
    customer_not_found: "There is no customer with that id.",
    back_to_search: "Back to the search",
    forbidden: "Your role does not allow this.",
    error_title: "Something went wrong",
    error_text: "The store could not answer. Try again in a moment; the server log has the details.",
    bad_request: "The request was not understood.",
    conflict: "That clashes with what is saved (perhaps someone changed it meanwhile). Reload the page and try again.",
    skip_to_content: "Skip to content",
    rfm_title: "RFM segment",
    p_alive_title: "Still active",
    p_alive_text: "chance that this customer is still buying from us (BG/NBD model)",
    clv_title: "12-month value",
    clv_text: "expected spend in the next 12 months (BG/NBD + Gamma-Gamma)",
    expected_title: "Next 90 days",
    expected_text: "purchases expected in the next 90 days",
    cluster_title: "Customer group",
    cluster_text: "homogeneous group found by k-means on recency, frequency and value",
    rfm_score_text: "recency, frequency and monetary quintiles (5 is best)",
    nav_audiences: "Audiences",
    audiences_not_live: "Audiences are not evaluated by this server: sizes are as last written.",
    audiences_standby: "Another server evaluates the audiences; sizes come from it.",
    audiences_rebuilding: "Audiences are being evaluated for every customer: sizes are catching up.",
    new_audience: "New audience",
    audience_not_found: "There is no audience with that name.",
    no_audiences: "No audiences yet.",
    size: "Size",
    trend: "Trend",
    updated: "Updated",
    description: "Description",
    definition: "Definition",
    slug: "Short name (slug)",
    slug_hint: "Lowercase letters, digits, - and _; used in other definitions as segment \"slug\".",
    definition_hint: "Written in the segment language: for example count(event \"Order Completed\" within 90d) >= 2 and p_alive < 0.4.",
    check: "Check",
    preview: "Preview",
    save: "Save",
    edit: "Edit",
    delete: "Delete",
    members: "Members",
    more_members: "More members",
    history: "Entries and exits",
    entered: "Entered",
    exited: "Exited",
    valid_definition: "The definition is valid.",
    matching_now: "customers match now",
    took: "took",
    sample: "Sample",
    line: "line",
    column: "column",
    size_over_time: "Size over time",
    read_only: "Your role can check and preview audiences but not save them.",
    not_saved: "Not saved",
    checking: "Checking…",
    points: "points",
    nav_analytics: "Analytics",
    analytics_as_of: "Last analysis as of",
    analytics_never: "No analysis has run yet: run prossimo analyze, or wait for the server's scheduled run.",
    buyers: "Buyers",
    repeat_buyers: "Repeat buyers",
    mean_p_alive: "Mean P(alive)",
    total_clv: "Value of the next 12 months",
    chart_growth: "Customer base",
    chart_growth_caption: "Customers who have bought so far, and those who bought in each month.",
    chart_new_returning: "New and returning",
    chart_new_returning_caption: "Buyers of each month: first purchase ever, or back again.",
    chart_cohorts: "Retention by cohort",
    chart_cohorts_caption: "Share of each month's new customers who buy again 1, 2, … months later.",
    chart_rfm: "RFM segments",
    chart_rfm_caption: "Share of customers and of value in each segment; below, customers by recency (R) and frequency (F) score.",
    chart_clv: "12-month value (CLV)",
    chart_clv_caption: "Customers by expected spend in the next 12 months (BG/NBD + Gamma-Gamma), in the reporting currency.",
    chart_p_alive: "Still active, by recency",
    chart_p_alive_caption: "Mean chance of still being a customer, by days since the last purchase.",
    chart_churn: "Churn and loyalty by segment",
    chart_churn_caption: "Latest month with data: share of last month's buyers who did not buy again (churn), and share of buyers who had bought before (loyalty).",
    chart_channels: "Offline share",
    chart_channels_caption: "Share of interactions and of revenue in stores and the call centre, per month.",
    chart_holdout: "CLV model check (calibration / holdout)",
    chart_holdout_caption: "Mean purchases in the holdout period by purchases in the calibration period: actual against BG/NBD's prediction.",
    holdout_missing: "No evaluation yet: run prossimo analyze clv --calibration-end YYYY-MM-DD.",
    not_computed: "Not computed yet: run the analyses.",
    customers_total: "Customers",
    active: "Active in the month",
    new_customers: "New",
    returning_customers: "Returning",
    cohort: "Cohort (size)",
    recency_frequency: "Recency \\ frequency",
    share_of_customers: "Share of customers",
    share_of_value: "Share of value",
    churn_rate: "Churn",
    loyalty_rate: "Loyalty",
    offline_interactions: "Offline interactions",
    offline_revenue: "Offline revenue",
    actual: "Actual",
    predicted: "Predicted",
    totals: "Holdout totals",
    chart_data: "Chart data",
    no_purchases_yet: "No purchases yet, so no value or churn prediction.",
    profiles_in_store: "profiles in the store",
    nav_live: "Live events",
    live_intro: "What this server's tracking API accepted and refused, newest first. The list updates every second; a refused request stored nothing.",
    live_empty: "Nothing received since this server started. Send an event (see the README's tour) and it appears here.",
    accepted: "Accepted",
    refused: "Refused",
    source: "Source",
    who: "Who",
    outcome: "Outcome",
    more_messages: "more messages in the same request",
    pause: "Pause",
    resume: "Resume",
    nav_settings: "Settings",
    sources: "Sources and write keys",
    sources_hint: "Each source sends events with its write key (the Segment SDKs' write key, as the basic-auth user). Revoking stops a key within seconds on every server.",
    write_key: "Write key",
    created: "Created",
    state: "State",
    active_state: "active",
    revoked_state: "revoked",
    disabled_state: "disabled",
    revoke: "Revoke",
    add_source: "Add a source",
    add: "Add",
    tokens: "Admin tokens",
    tokens_hint: "Bearer tokens for the read and admin API. A new token is shown once.",
    new_token_once: "New token (copy it now: it is not shown again)",
    create_token: "Create a token",
    users: "Users",
    role: "Role",
    change: "Change",
    disable: "Disable",
    enable: "Enable",
    add_user: "Add a user",
    password_rule: "At least 10 characters.",
    destinations: "Destinations",
    destinations_hint: "Signed webhooks (Standard Webhooks) for audience changes and event streams; create them with the API (POST /v1/destinations).",
    kind_label: "Kind",
    enabled: "Enabled",
    pending: "Pending",
    dead_letters: "Dead letters",
    deliveries: "Deliveries",
    all: "All",
    delivered: "Delivered",
    attempts: "Attempts",
    replay_dead: "Send every dead letter again",
    replayed: "back in the queue",
    no_deliveries: "No deliveries.",
    last_error: "Last error",
    yes: "yes",
    no: "no",
    done_source: "Source added.",
    done_origins: "Web pages saved.",
    allowed_pages: "Web pages",
    any_page: "any page",
    allowed_pages_hint: "One origin a line (https://shop.example.it); empty lets any page send with this key.",
    done_revoked: "Revoked.",
    done_user: "User added.",
    done_role: "Role changed.",
    done_state: "User updated; a disabled user's sessions have ended.",
    done_saved: "Saved.",
    canonical_prefix: "Canonical form:",
    no_destinations: "No destinations yet.",
    busy: "Too many sign-ins at once. Try again in a moment.",
    similar_refusals: "more refused alike right after",
    nav_journeys: "Journeys",
    new_journey: "New journey",
    journey_not_found: "There is no journey with that name.",
    no_journeys: "No journeys yet. A journey sends the right message at the right moment: write one here or with `prossimo journey save`.",
    journey_state: "State",
    journeys_entered: "Entered",
    journeys_active: "Under way",
    converted: "Converted",
    state_draft: "draft",
    state_published: "live",
    state_paused: "paused",
    state_archived: "archived",
    version: "Version",
    publish: "Publish the draft",
    journey_pause: "Pause",
    journey_resume: "Resume",
    archive: "Archive",
    waiting_here: "here now",
    passed: "passed",
    exits: "How instances ended",
    versions: "Versions",
    journey_history: "History",
    live_counts: "Counts refresh every few seconds.",
    journey_hint: "The journey as JSON: trigger, entry, goal, exit_when and steps (docs/journeys.md). It is checked as you type; saving keeps a draft, publishing makes it live.",
    valid_journey: "No problems:",
    steps_word: "steps",
    drawing_draft: "Not published yet: this is the draft.",
    drawing_version: "The live version",
    draft_differs: "The draft differs from the live version.",
    by: "by",
    send_message: "Send a message",
    send_message_hint: "Sent once to each member now in the audience, through consent, caps, quiet hours and holidays.",
    message_word: "Message",
    topic_word: "Topic",
    send_now: "Send to the audience",
    broadcasts_title: "Messages sent to this audience",
    no_message_written: "No message written yet: write one with POST /v1/messages.",
    start_journey: "Start a journey",
    owed_word: "owed",
    nav_messages: "Messages",
    new_message: "New message",
    message_not_found: "There is no message with that name.",
    no_messages_written: "No messages yet. A message is what journeys and broadcasts send: write one here.",
    no_such_customer: "No customer",
    preview_gone: "This preview is no longer kept: preview again.",
    channel_word: "Channel",
    subject_word: "Subject",
    format_word: "Format",
    destination_word: "Destination (webhook)",
    body_word: "Body",
    body_hint: "Liquid over profile (traits), computed (RFM, CLV, P(alive)), event (what triggered it) and unsubscribe_url; for a webhook, a JSON object whose strings are Liquid.",
    preview_for: "Preview for the customer",
    preview_for_hint: "An identifier such as user_id:42 or email:anna@example.it, or a profile id.",
    event_json: "The event that triggers it (JSON)",
    text_part: "Text part",
    html_part: "As it shows in a mail client",
    as_customer_gets_it: "As this customer would get it:",
    dry_run: "Dry run",
    dry_run_over: "Over the audience",
    dry_run_button: "Try the draft",
    dry_run_hint: "The draft run for the audience's members as if they entered now (up to 10,000), writing nothing: caps and quiet hours are left out.",
    would_enter: "would enter",
    not_entering: "would not enter",
    would_go: "would be sent",
    would_skip: "would be skipped",
    would_wait: "would wait at",
    would_end: "would end at once",
    waiting_at: "waiting at",
    journey_ended: "ended",
    journey_entering: "entering",
    in_no_journey: "In no journey so far.",
};

pub static IT: Texts = Texts {
    product_tagline: "Dati e relazione con i clienti",
    nav_customers: "Clienti",
    nav_main: "Principale",
    sign_in: "Accedi",
    sign_out: "Esci",
    email: "E-mail",
    password: "Password",
    bad_credentials: "E-mail o password errate.",
    too_many_attempts: "Troppi accessi falliti per questo account. Riprova tra qualche minuto.",
    form_expired: "Il modulo è scaduto. Accedi di nuovo.",
    signed_in_as: "Accesso come",
    search_customers: "Trova un cliente",
    search_label: "Identificativo o nome",
    search_hint: "Un nome, un'e-mail, un telefono, uno user id o un anonymous id, o il loro inizio; tipo:valore (email:anna@example.it) per un identificativo esatto.",
    search: "Cerca",
    no_results: "Nessun cliente corrisponde.",
    period_in_progress: "in corso",
    last_run_failed: "L'ultima analisi non è riuscita; i grafici mostrano quella precedente.",
    last_run_problems: "L'ultima analisi non ha potuto calcolare tutto:",
    run_again: "Esegui di nuovo le analisi",
    run_requested: "È stata chiesta una nuova analisi; questa pagina ne mostra i risultati appena è finita.",
    results_shown: "Clienti",
    results_more: "e altri: affina la ricerca o passa alla pagina successiva",
    next_results: "Successivi",
    previous_results: "Precedenti",
    name: "Nome",
    user_id: "User id",
    last_seen: "Ultima visita",
    first_seen: "Prima visita",
    matched: "Corrispondenza",
    unnamed: "(senza nome)",
    overview: "Sintesi",
    events: "Eventi",
    orders: "Ordini",
    revenue: "Fatturato netto",
    first_channel: "Primo canale",
    traits: "Attributi",
    no_traits: "Nessun attributo.",
    identifiers: "Identificativi",
    kind: "Tipo",
    value: "Valore",
    since: "Dal",
    identity_history: "Storia dell'identità",
    no_identity_history: "Nessuna fusione, fusione rifiutata o identificativo ignorato.",
    merged_profiles: "Profili confluiti in questo",
    understanding: "Cosa sappiamo",
    not_analysed: "Non ancora analizzato: esegui le analisi (prossimo analyze, o attendi l'esecuzione pianificata).",
    segments: "Segmenti",
    no_segments: "In nessun segmento.",
    member_since: "membro dal",
    messages: "Messaggi",
    consent: "Consenso",
    no_consent: "Nessuna scelta registrata: il marketing parte, salvo se è richiesto l'opt-in.",
    opted_in: "iscritto",
    opted_out: "disiscritto",
    every_topic: "tutti gli argomenti",
    no_messages: "Nessun messaggio inviato finora.",
    left_on: "uscito il",
    channel_mix: "Canali",
    timeline: "Cronologia",
    all_channels: "Tutti i canali",
    all_types: "Tutti i tipi",
    channel: "Canale",
    type_: "Tipo",
    event_name: "Nome evento",
    filter: "Filtra",
    time: "Ora (UTC)",
    what: "Cosa",
    details: "Dettagli",
    older: "Eventi precedenti",
    newest: "Eventi più recenti",
    no_events: "Nessun evento corrisponde.",
    not_found: "Non trovato",
    customer_not_found: "Non esiste un cliente con questo id.",
    back_to_search: "Torna alla ricerca",
    forbidden: "Il tuo ruolo non lo consente.",
    error_title: "Qualcosa è andato storto",
    error_text: "L'archivio non ha risposto. Riprova tra poco; il log del server ha i dettagli.",
    bad_request: "Richiesta non compresa.",
    conflict: "La modifica è in conflitto con quanto salvato (forse qualcuno l'ha cambiato nel frattempo). Ricarica la pagina e riprova.",
    skip_to_content: "Vai al contenuto",
    rfm_title: "Segmento RFM",
    p_alive_title: "Ancora attivo",
    p_alive_text: "probabilità che il cliente stia ancora acquistando da noi (modello BG/NBD)",
    clv_title: "Valore a 12 mesi",
    clv_text: "spesa attesa nei prossimi 12 mesi (BG/NBD + Gamma-Gamma)",
    expected_title: "Prossimi 90 giorni",
    expected_text: "acquisti attesi nei prossimi 90 giorni",
    cluster_title: "Gruppo di clienti",
    cluster_text: "gruppo omogeneo trovato con k-means su recenza, frequenza e valore",
    rfm_score_text: "quintili di recenza, frequenza e valore (5 è il migliore)",
    nav_audiences: "Segmenti",
    audiences_not_live: "I segmenti non sono valutati da questo server: le dimensioni sono le ultime registrate.",
    audiences_standby: "Un altro server valuta i segmenti; le dimensioni arrivano da lì.",
    audiences_rebuilding: "I segmenti sono in valutazione per tutti i clienti: le dimensioni si stanno aggiornando.",
    new_audience: "Nuovo segmento",
    audience_not_found: "Non esiste un segmento con questo nome.",
    no_audiences: "Ancora nessun segmento.",
    size: "Dimensione",
    trend: "Andamento",
    updated: "Aggiornato",
    description: "Descrizione",
    definition: "Definizione",
    slug: "Nome breve (slug)",
    slug_hint: "Lettere minuscole, cifre, - e _; si usa in altre definizioni come segment \"slug\".",
    definition_hint: "Scritta nel linguaggio dei segmenti: per esempio count(event \"Order Completed\" within 90d) >= 2 and p_alive < 0.4.",
    check: "Verifica",
    preview: "Anteprima",
    save: "Salva",
    edit: "Modifica",
    delete: "Elimina",
    members: "Membri",
    more_members: "Altri membri",
    history: "Entrate e uscite",
    entered: "Entrato",
    exited: "Uscito",
    valid_definition: "La definizione è valida.",
    matching_now: "clienti corrispondono ora",
    took: "in",
    sample: "Esempio",
    line: "riga",
    column: "colonna",
    size_over_time: "Dimensione nel tempo",
    read_only: "Il tuo ruolo può verificare e vedere in anteprima i segmenti, ma non salvarli.",
    not_saved: "Non salvato",
    checking: "Verifica in corso…",
    points: "punti",
    nav_analytics: "Analisi",
    analytics_as_of: "Ultima analisi al",
    analytics_never: "Nessuna analisi eseguita: esegui prossimo analyze, o attendi l'esecuzione pianificata del server.",
    buyers: "Acquirenti",
    repeat_buyers: "Acquirenti ripetuti",
    mean_p_alive: "P(attivo) media",
    total_clv: "Valore dei prossimi 12 mesi",
    chart_growth: "Base clienti",
    chart_growth_caption: "Clienti che hanno acquistato finora, e quelli che hanno acquistato in ogni mese.",
    chart_new_returning: "Nuovi e di ritorno",
    chart_new_returning_caption: "Acquirenti di ogni mese: primo acquisto, o di ritorno.",
    chart_cohorts: "Fidelizzazione per coorte",
    chart_cohorts_caption: "Quota dei nuovi clienti di ogni mese che acquista di nuovo dopo 1, 2, … mesi.",
    chart_rfm: "Segmenti RFM",
    chart_rfm_caption: "Quota di clienti e di valore in ogni segmento; sotto, clienti per punteggio di recenza (R) e frequenza (F).",
    chart_clv: "Valore a 12 mesi (CLV)",
    chart_clv_caption: "Clienti per spesa attesa nei prossimi 12 mesi (BG/NBD + Gamma-Gamma), nella valuta di riferimento.",
    chart_p_alive: "Ancora attivi, per recenza",
    chart_p_alive_caption: "Probabilità media di essere ancora cliente, per giorni dall'ultimo acquisto.",
    chart_churn: "Abbandono e fedeltà per segmento",
    chart_churn_caption: "Ultimo mese con dati: quota degli acquirenti del mese prima che non hanno riacquistato (abbandono), e quota di acquirenti che avevano già acquistato (fedeltà).",
    chart_channels: "Quota offline",
    chart_channels_caption: "Quota di interazioni e di fatturato in negozio e al call center, per mese.",
    chart_holdout: "Verifica del modello CLV (calibrazione / holdout)",
    chart_holdout_caption: "Acquisti medi nel periodo di holdout per acquisti nel periodo di calibrazione: reali contro la previsione BG/NBD.",
    holdout_missing: "Nessuna verifica: esegui prossimo analyze clv --calibration-end AAAA-MM-GG.",
    not_computed: "Non ancora calcolato: esegui le analisi.",
    customers_total: "Clienti",
    active: "Attivi nel mese",
    new_customers: "Nuovi",
    returning_customers: "Di ritorno",
    cohort: "Coorte (dimensione)",
    recency_frequency: "Recenza \\ frequenza",
    share_of_customers: "Quota di clienti",
    share_of_value: "Quota di valore",
    churn_rate: "Abbandono",
    loyalty_rate: "Fedeltà",
    offline_interactions: "Interazioni offline",
    offline_revenue: "Fatturato offline",
    actual: "Reale",
    predicted: "Previsto",
    totals: "Totali nel periodo di holdout",
    chart_data: "Dati del grafico",
    no_purchases_yet: "Nessun acquisto, quindi nessuna previsione di valore o di abbandono.",
    profiles_in_store: "profili nell'archivio",
    nav_live: "Eventi in diretta",
    live_intro: "Cosa l'API di tracciamento di questo server ha accettato e rifiutato, dal più recente. L'elenco si aggiorna ogni secondo; una richiesta rifiutata non ha registrato nulla.",
    live_empty: "Nulla ricevuto dall'avvio del server. Invia un evento (vedi il tour nel README) e comparirà qui.",
    accepted: "Accettato",
    refused: "Rifiutato",
    source: "Sorgente",
    who: "Chi",
    outcome: "Esito",
    more_messages: "altri messaggi nella stessa richiesta",
    pause: "Pausa",
    resume: "Riprendi",
    nav_settings: "Impostazioni",
    sources: "Sorgenti e chiavi di scrittura",
    sources_hint: "Ogni sorgente invia eventi con la propria chiave di scrittura (la write key degli SDK Segment, come utente basic-auth). La revoca blocca una chiave entro pochi secondi su ogni server.",
    write_key: "Chiave di scrittura",
    created: "Creato",
    state: "Stato",
    active_state: "attivo",
    revoked_state: "revocato",
    disabled_state: "disabilitato",
    revoke: "Revoca",
    add_source: "Aggiungi una sorgente",
    add: "Aggiungi",
    tokens: "Token di amministrazione",
    tokens_hint: "Token bearer per le API di lettura e amministrazione. Un nuovo token viene mostrato una sola volta.",
    new_token_once: "Nuovo token (copialo ora: non verrà più mostrato)",
    create_token: "Crea un token",
    users: "Utenti",
    role: "Ruolo",
    change: "Cambia",
    disable: "Disabilita",
    enable: "Abilita",
    add_user: "Aggiungi un utente",
    password_rule: "Almeno 10 caratteri.",
    destinations: "Destinazioni",
    destinations_hint: "Webhook firmati (Standard Webhooks) per i cambi di segmento e i flussi di eventi; si creano con l'API (POST /v1/destinations).",
    kind_label: "Tipo",
    enabled: "Attiva",
    pending: "In attesa",
    dead_letters: "Non consegnati",
    deliveries: "Consegne",
    all: "Tutte",
    delivered: "Consegnate",
    attempts: "Tentativi",
    replay_dead: "Reinvia tutti i non consegnati",
    replayed: "di nuovo in coda",
    no_deliveries: "Nessuna consegna.",
    last_error: "Ultimo errore",
    yes: "sì",
    no: "no",
    done_source: "Sorgente aggiunta.",
    done_origins: "Pagine web salvate.",
    allowed_pages: "Pagine web",
    any_page: "qualsiasi pagina",
    allowed_pages_hint: "Un'origine per riga (https://shop.example.it); vuoto consente l'invio da qualsiasi pagina con questa chiave.",
    done_revoked: "Revocato.",
    done_user: "Utente aggiunto.",
    done_role: "Ruolo cambiato.",
    done_state: "Utente aggiornato; le sessioni di un utente disabilitato sono terminate.",
    done_saved: "Salvato.",
    canonical_prefix: "Forma canonica:",
    no_destinations: "Ancora nessuna destinazione.",
    busy: "Troppi accessi contemporanei. Riprova tra un momento.",
    similar_refusals: "altri rifiutati allo stesso modo subito dopo",
    nav_journeys: "Journey",
    new_journey: "Nuova journey",
    journey_not_found: "Non esiste una journey con questo nome.",
    no_journeys: "Ancora nessuna journey. Una journey invia il messaggio giusto al momento giusto: scrivine una qui o con `prossimo journey save`.",
    journey_state: "Stato",
    journeys_entered: "Entrati",
    journeys_active: "In corso",
    converted: "Convertiti",
    state_draft: "bozza",
    state_published: "attiva",
    state_paused: "in pausa",
    state_archived: "archiviata",
    version: "Versione",
    publish: "Pubblica la bozza",
    journey_pause: "Metti in pausa",
    journey_resume: "Riprendi",
    archive: "Archivia",
    waiting_here: "qui ora",
    passed: "passati",
    exits: "Come sono finite le istanze",
    versions: "Versioni",
    journey_history: "Storico",
    live_counts: "I conteggi si aggiornano ogni pochi secondi.",
    journey_hint: "La journey in JSON: trigger, entry, goal, exit_when e steps (docs/journeys.md). Viene controllata mentre scrivi; salvare conserva una bozza, pubblicare la rende attiva.",
    valid_journey: "Nessun problema:",
    steps_word: "passi",
    drawing_draft: "Non ancora pubblicata: questa è la bozza.",
    drawing_version: "La versione attiva",
    draft_differs: "La bozza è diversa dalla versione attiva.",
    by: "da",
    send_message: "Invia un messaggio",
    send_message_hint: "Inviato una volta a ogni membro attuale del segmento, nel rispetto di consensi, limiti di frequenza, orari di silenzio e festività.",
    message_word: "Messaggio",
    topic_word: "Argomento",
    send_now: "Invia al segmento",
    broadcasts_title: "Messaggi inviati a questo segmento",
    no_message_written: "Ancora nessun messaggio: scrivine uno con POST /v1/messages.",
    start_journey: "Avvia una journey",
    owed_word: "dovuti",
    nav_messages: "Messaggi",
    new_message: "Nuovo messaggio",
    message_not_found: "Non esiste un messaggio con questo nome.",
    no_messages_written: "Ancora nessun messaggio. Un messaggio è ciò che journey e invii inviano: scrivine uno qui.",
    no_such_customer: "Nessun cliente",
    preview_gone: "Questa anteprima non è più disponibile: rigenerala.",
    channel_word: "Canale",
    subject_word: "Oggetto",
    format_word: "Formato",
    destination_word: "Destinazione (webhook)",
    body_word: "Corpo",
    body_hint: "Liquid su profile (tratti), computed (RFM, CLV, P(alive)), event (ciò che l'ha attivato) e unsubscribe_url; per un webhook, un oggetto JSON le cui stringhe sono Liquid.",
    preview_for: "Anteprima per il cliente",
    preview_for_hint: "Un identificativo come user_id:42 o email:anna@example.it, oppure l'id del profilo.",
    event_json: "L'evento che lo attiva (JSON)",
    text_part: "Parte di testo",
    html_part: "Come appare in un client di posta",
    as_customer_gets_it: "Come lo riceverebbe questo cliente:",
    dry_run: "Prova a vuoto",
    dry_run_over: "Sul segmento",
    dry_run_button: "Prova la bozza",
    dry_run_hint: "La bozza eseguita per i membri del segmento come se entrassero ora (fino a 10.000), senza scrivere nulla: limiti di frequenza e orari di silenzio sono esclusi.",
    would_enter: "entrerebbero",
    not_entering: "non entrerebbero",
    would_go: "verrebbe inviato",
    would_skip: "verrebbe saltato",
    would_wait: "aspetterebbero a",
    would_end: "finirebbero subito",
    waiting_at: "in attesa a",
    journey_ended: "finita",
    journey_entering: "in ingresso",
    in_no_journey: "In nessuna journey finora.",
};

/// The RFM segment codes from the best customers to the lost ones, as the analyses list them.
pub const RFM_ORDER: [&str; 11] = [
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
];

/// The RFM segment codes (`rfm_segment`) in words, with what to do about them.
pub fn rfm_segment(lang: Lang, code: &str) -> Option<(&'static str, &'static str)> {
    let (en, it) = match code {
        "champions" => (
            (
                "Champions",
                "bought recently, often and spent the most: reward them",
            ),
            (
                "Campioni",
                "acquisti recenti, frequenti e di valore: premiali",
            ),
        ),
        "loyal" => (
            ("Loyal", "buy regularly and respond to offers"),
            (
                "Fedeli",
                "acquistano regolarmente e rispondono alle offerte",
            ),
        ),
        "potential_loyalist" => (
            (
                "Potential loyalist",
                "recent customers with more than one purchase",
            ),
            (
                "Potenziali fedeli",
                "clienti recenti con più di un acquisto",
            ),
        ),
        "new" => (
            ("New", "bought for the first time recently"),
            ("Nuovi", "primo acquisto recente"),
        ),
        "promising" => (
            ("Promising", "recent but still small spenders"),
            ("Promettenti", "recenti ma con spesa ancora bassa"),
        ),
        "need_attention" => (
            ("Need attention", "above average, but not lately"),
            ("Da seguire", "sopra la media, ma non di recente"),
        ),
        "about_to_sleep" => (
            ("About to sleep", "below average and fading"),
            ("In assopimento", "sotto la media e in calo"),
        ),
        "at_risk" => (
            (
                "At risk",
                "spent a lot and often, but long ago: win them back",
            ),
            (
                "A rischio",
                "hanno speso molto e spesso, ma tempo fa: riconquistali",
            ),
        ),
        "cant_lose" => (
            ("Can't lose", "among the best once, gone quiet: act now"),
            (
                "Da non perdere",
                "tra i migliori un tempo, ora silenziosi: agisci subito",
            ),
        ),
        "hibernating" => (
            ("Hibernating", "last bought long ago, few purchases"),
            ("In letargo", "ultimo acquisto lontano, pochi acquisti"),
        ),
        "lost" => (
            ("Lost", "lowest recency, frequency and value"),
            ("Persi", "recenza, frequenza e valore più bassi"),
        ),
        _ => return None,
    };
    Some(match lang {
        Lang::En => en,
        Lang::It => it,
    })
}

/// A channel code (`web`, `store`, …) in words.
pub fn channel(lang: Lang, code: &str) -> &str {
    let (en, it) = match code {
        "web" => ("Web", "Web"),
        "app" => ("App", "App"),
        "server" => ("Server", "Server"),
        "store" => ("Store", "Negozio"),
        "call_center" => ("Call centre", "Call center"),
        "email" => ("E-mail", "E-mail"),
        "sms" => ("SMS", "SMS"),
        "social" => ("Social", "Social"),
        "partner" => ("Partner", "Partner"),
        "other" => ("Other", "Altro"),
        _ => return code,
    };
    match lang {
        Lang::En => en,
        Lang::It => it,
    }
}

/// A short badge per channel (shown in a coloured chip beside the name), so a timeline
/// reads at a glance without depending on an emoji font.
pub fn channel_icon(code: &str) -> &'static str {
    match code {
        "web" => "WEB",
        "app" => "APP",
        "server" => "SRV",
        "store" => "POS",
        "call_center" => "CC",
        "email" => "@",
        "sms" => "SMS",
        "social" => "SOC",
        "partner" => "PRT",
        _ => "OTH",
    }
}

/// What sets a customer group apart, in words: each clustering feature far from the
/// average (|z| ≥ 0.5), high or low, the farthest first.
fn feature_words(lang: Lang, feature: &str, high: bool) -> Option<&'static str> {
    Some(match (lang, feature, high) {
        (Lang::En, "recency_days", true) => "away for long",
        (Lang::En, "recency_days", false) => "recent buyers",
        (Lang::En, "frequency", true) => "frequent",
        (Lang::En, "frequency", false) => "occasional",
        (Lang::En, "monetary", true) => "big baskets",
        (Lang::En, "monetary", false) => "small baskets",
        (Lang::En, "clv_12m", true) => "high future value",
        (Lang::En, "clv_12m", false) => "low future value",
        (Lang::En, "p_alive", true) => "likely still active",
        (Lang::En, "p_alive", false) => "probably lapsed",
        (Lang::En, "offline_share", true) => "mostly in store",
        (Lang::En, "offline_share", false) => "mostly online",
        (Lang::It, "recency_days", true) => "assenti da tempo",
        (Lang::It, "recency_days", false) => "acquisti recenti",
        (Lang::It, "frequency", true) => "frequenti",
        (Lang::It, "frequency", false) => "occasionali",
        (Lang::It, "monetary", true) => "scontrino alto",
        (Lang::It, "monetary", false) => "scontrino basso",
        (Lang::It, "clv_12m", true) => "alto valore futuro",
        (Lang::It, "clv_12m", false) => "basso valore futuro",
        (Lang::It, "p_alive", true) => "probabilmente ancora attivi",
        (Lang::It, "p_alive", false) => "probabilmente persi",
        (Lang::It, "offline_share", true) => "soprattutto in negozio",
        (Lang::It, "offline_share", false) => "soprattutto online",
        _ => return None,
    })
}

/// A customer group's name from what distinguishes it (the clustering report's
/// `distinctive_features`: `{feature, z}`, farthest from the average first), e.g.
/// "Frequent, big baskets" / "Frequenti, scontrino alto"; "Typical customers" when
/// nothing stands out.
pub fn cluster_name(lang: Lang, distinctive: &[serde_json::Value]) -> String {
    let words: Vec<&str> = distinctive
        .iter()
        .filter_map(|d| {
            let z = d.get("z")?.as_f64()?;
            let feature = d.get("feature")?.as_str()?;
            (z.abs() >= 0.5)
                .then(|| feature_words(lang, feature, z > 0.0))
                .flatten()
        })
        .take(2)
        .collect();
    if words.is_empty() {
        return match lang {
            Lang::En => "Typical customers",
            Lang::It => "Clienti nella media",
        }
        .to_owned();
    }
    let joined = words.join(", ");
    let mut chars = joined.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept-language",
            HeaderValue::from_static("it-IT,it;q=0.9,en;q=0.8"),
        );
        assert_eq!(Lang::choose(None, &headers), Lang::It);
        headers.insert("cookie", HeaderValue::from_static("prossimo_lang=en"));
        assert_eq!(Lang::choose(None, &headers), Lang::En);
        assert_eq!(Lang::choose(Some("it"), &headers), Lang::It);
        assert_eq!(Lang::choose(Some("de"), &HeaderMap::new()), Lang::En);
        assert_eq!(preferred("en;q=0.1,it;q=0.9"), Some(Lang::It), "q decides");
        assert_eq!(
            preferred("de-DE,it;q=0.5,en;q=0.5"),
            Some(Lang::It),
            "then order"
        );
        assert_eq!(
            preferred("it;q=0,en;q=0.2"),
            Some(Lang::En),
            "q=0 means not wanted"
        );
        assert_eq!(preferred("fr,de"), None);
    }

    #[test]
    fn the_rfm_order_is_the_analyses_order() {
        let codes: Vec<&str> = prossimo_analytics::rfm::RfmSegment::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(codes, RFM_ORDER);
    }

    #[test]
    fn every_rfm_segment_code_has_words_in_both_languages() {
        for segment in prossimo_analytics::rfm::RfmSegment::ALL {
            let code = segment.as_str();
            assert!(rfm_segment(Lang::En, code).is_some(), "{code}");
            assert!(rfm_segment(Lang::It, code).is_some(), "{code}");
        }
    }

    #[test]
    fn customer_groups_are_named_by_what_sets_them_apart() {
        let features = json!([
            {"feature": "frequency", "z": 1.9},
            {"feature": "monetary", "z": 1.1},
            {"feature": "recency_days", "z": -0.7},
            {"feature": "p_alive", "z": 0.2}
        ]);
        let features = features.as_array().unwrap();
        assert_eq!(cluster_name(Lang::En, features), "Frequent, big baskets");
        assert_eq!(
            cluster_name(Lang::It, features),
            "Frequenti, scontrino alto"
        );
        let average = json!([{"feature": "frequency", "z": 0.1}]);
        assert_eq!(
            cluster_name(Lang::It, average.as_array().unwrap()),
            "Clienti nella media"
        );
        assert_eq!(cluster_name(Lang::En, &[]), "Typical customers");
    }
}
