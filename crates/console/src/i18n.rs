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
                accept.split(',').find_map(Lang::parse)
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
    pub name: &'static str,
    pub user_id: &'static str,
    pub last_seen: &'static str,
    pub first_seen: &'static str,
    pub matched: &'static str,
    pub customers_in_store: &'static str,
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
    pub canonical_form: &'static str,
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
    name: "Name",
    user_id: "User id",
    last_seen: "Last seen",
    first_seen: "First seen",
    matched: "Matched",
    customers_in_store: "customers in the store",
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
    canonical_form: "Canonical form",
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
    name: "Nome",
    user_id: "User id",
    last_seen: "Ultima visita",
    first_seen: "Prima visita",
    matched: "Corrispondenza",
    customers_in_store: "clienti nell'archivio",
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
    canonical_form: "Forma canonica",
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
};

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

/// A small pictogram per channel, so a timeline reads at a glance (with text beside it for
/// screen readers).
pub fn channel_icon(code: &str) -> &'static str {
    match code {
        "web" => "🌐",
        "app" => "📱",
        "server" => "🖥",
        "store" => "🏬",
        "call_center" => "☎",
        "email" => "✉",
        "sms" => "💬",
        "social" => "👥",
        "partner" => "🤝",
        _ => "•",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
    }

    #[test]
    fn every_rfm_segment_code_has_words_in_both_languages() {
        for segment in prossimo_analytics::rfm::RfmSegment::ALL {
            let code = segment.as_str();
            assert!(rfm_segment(Lang::En, code).is_some(), "{code}");
            assert!(rfm_segment(Lang::It, code).is_some(), "{code}");
        }
    }
}
