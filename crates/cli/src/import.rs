//! `prossimo import events|customers|orders FILE`: streaming bulk import of history.
//!
//! Every row becomes a Segment message and goes through the same validation and identity
//! path as the HTTP API. Message ids are derived from the rows, so importing the same file
//! again changes nothing. Rejected rows are reported with their line and written to a
//! rejects file; accepted rows are durable when the command returns.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use prossimo_model::{Limits, parse_timestamp, parse_value};
use prossimo_store::{Incoming, IngestReport, Store};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Segment messages (NDJSON), or one event per CSV row.
    Events,
    /// One person per row; columns become traits.
    Customers,
    /// One `Order Completed` per row.
    Orders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
    /// The CDNOW transaction log: `customer_id date(YYYYMMDD) number_of_cds dollar_value`,
    /// whitespace-separated.
    Cdnow,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    kind: Kind,
    /// The file to import.
    file: PathBuf,
    /// File format [default: from the extension, else sniffed from the first line].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Where rejected rows go [default: FILE.rejects.ndjson].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Source the rows are recorded under (created if missing).
    #[arg(long, default_value = "import")]
    source: String,
    /// Currency of orders without a currency column [default: the reporting currency
    /// of `[money]`; USD for CDNOW, whose amounts are dollars].
    #[arg(long)]
    currency: Option<String>,
}

/// Rows sent to the store per transaction.
const CHUNK_ROWS: usize = 5_000;

/// One row's problem: the field and why.
struct RowError {
    field: String,
    reason: String,
}

fn row_error(field: &str, reason: impl Into<String>) -> RowError {
    RowError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

struct Importer<'a> {
    store: &'a Store,
    source_id: i64,
    limits: Limits,
    file: String,
    pending: Vec<Incoming>,
    report: IngestReport,
    rows: u64,
    rejected: u64,
    rejects: Option<BufWriter<File>>,
    rejects_path: PathBuf,
}

impl Importer<'_> {
    fn accept(&mut self, line: u64, raw: &str, row: Result<Value, RowError>) -> Result<()> {
        self.rows += 1;
        let message = row.and_then(|v| {
            parse_value(v, Utc::now(), &self.limits).map_err(|e| {
                let d = e.details.first();
                row_error(
                    d.map_or("message", |d| d.field.as_str()),
                    d.map_or(e.message.clone(), |d| d.reason.clone()),
                )
            })
        });
        let incoming = message.and_then(|m| {
            let incoming =
                Incoming::new(self.source_id, m, self.store.identity(), self.store.money())
                    .map_err(|e| row_error("message", format!("cannot be stored: {e}")))?;
            if let Some((field, why)) = incoming.refusal() {
                return Err(row_error(&field, why));
            }
            Ok(incoming)
        });
        match incoming {
            Ok(i) => {
                self.pending.push(i);
                if self.pending.len() >= CHUNK_ROWS {
                    self.flush()?;
                }
            }
            Err(e) => self.reject(line, raw, &e)?,
        }
        Ok(())
    }

    fn reject(&mut self, line: u64, raw: &str, e: &RowError) -> Result<()> {
        self.rejected += 1;
        if self.rejected <= 20 {
            eprintln!("{}:{line}: {}: {}", self.file, e.field, e.reason);
        } else if self.rejected == 21 {
            eprintln!("… more rejected rows in {}", self.rejects_path.display());
        }
        if self.rejects.is_none() {
            let f = File::create(&self.rejects_path).with_context(|| {
                format!(
                    "cannot create the rejects file {}",
                    self.rejects_path.display()
                )
            })?;
            self.rejects = Some(BufWriter::new(f));
        }
        if let Some(w) = &mut self.rejects {
            let record = json!({"line": line, "field": e.field, "reason": e.reason, "row": raw});
            writeln!(w, "{record}")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let report = self.store.ingest(&self.pending).context("writing to the store failed; rows up to the previous chunk are stored, re-run to resume")?;
        self.report.add(report);
        self.pending.clear();
        Ok(())
    }
}

pub fn run(store: &Store, config: &Settings, args: ImportArgs) -> Result<()> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let format = match args.format {
        Some(f) => f,
        None => detect_format(&args.file, args.kind)?,
    };
    let source = match store.source_by_name(&args.source)? {
        Some(s) => s,
        None => store.create_source(&args.source, None)?,
    };
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(file));
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let mut p = args.file.clone().into_os_string();
        p.push(".rejects.ndjson");
        PathBuf::from(p)
    });
    let mut importer = Importer {
        store,
        source_id: source.id,
        limits: config.limits()?,
        file: args.file.display().to_string(),
        pending: Vec::new(),
        report: IngestReport::default(),
        rows: 0,
        rejected: 0,
        rejects: None,
        rejects_path,
    };
    let currency = args.currency.clone().unwrap_or_else(|| {
        if format == Format::Cdnow {
            "USD".into()
        } else {
            store.money().reporting().to_owned()
        }
    });
    match format {
        Format::Ndjson => read_ndjson(reader, args.kind, &mut importer)?,
        Format::Csv => read_csv(reader, args.kind, &currency, &mut importer)?,
        Format::Cdnow => {
            if args.kind != Kind::Orders {
                bail!("the CDNOW format holds orders: use `prossimo import orders`");
            }
            read_cdnow(reader, &currency, &mut importer)?
        }
    }
    importer.flush()?;
    if let Some(w) = &mut importer.rejects {
        w.flush()?;
    }
    bar.finish_and_clear();
    println!(
        "{}: {} rows, {} stored, {} already present, {} rejected; {} new profiles, {} merges",
        importer.file,
        importer.rows,
        importer.report.stored,
        importer.report.duplicates,
        importer.rejected,
        importer.report.profiles_created,
        importer.report.merges
    );
    if importer.rejected > 0 {
        bail!(
            "{} rows rejected (the other rows are stored); each is in {} with its line and reason",
            importer.rejected,
            importer.rejects_path.display()
        );
    }
    Ok(())
}

fn detect_format(path: &Path, kind: Kind) -> Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "ndjson" | "jsonl" | "json" => return Ok(Format::Ndjson),
        "csv" => return Ok(Format::Csv),
        _ => {}
    }
    let mut first = String::new();
    BufReader::new(File::open(path)?).read_line(&mut first)?;
    let first = first.trim_start();
    Ok(if first.starts_with('{') {
        Format::Ndjson
    } else if first.contains(',') {
        Format::Csv
    } else if kind == Kind::Orders && first.split_whitespace().count() >= 4 {
        Format::Cdnow
    } else {
        bail!(
            "{}: cannot tell the format; pass --format csv|ndjson|cdnow",
            path.display()
        )
    })
}

fn stable_id(prefix: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!("{prefix}-{}", hex::encode(&digest[..12]))
}

fn read_ndjson(reader: impl BufRead, kind: Kind, imp: &mut Importer) -> Result<()> {
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: read error", imp.file))?;
        let number = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row = match prossimo_model::parse_json(&line) {
            Err(e) => Err(row_error("line", format!("not JSON: {e}"))),
            Ok(Value::Object(mut obj)) => {
                match kind {
                    Kind::Events => {}
                    Kind::Customers => {
                        obj.entry("type").or_insert_with(|| json!("identify"));
                    }
                    Kind::Orders => {
                        obj.entry("type").or_insert_with(|| json!("track"));
                        obj.entry("event")
                            .or_insert_with(|| json!(prossimo_model::ORDER_COMPLETED));
                    }
                }
                // Re-importing the same line must give the same message id.
                obj.entry("messageId")
                    .or_insert_with(|| json!(stable_id("import", &line)));
                Ok(Value::Object(obj))
            }
            Ok(_) => Err(row_error("line", "expected a JSON object")),
        };
        imp.accept(number, &line, row)?;
    }
    Ok(())
}

fn read_csv(reader: impl Read, kind: Kind, currency: &str, imp: &mut Importer) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .with_context(|| format!("{}:1: cannot read the header", imp.file))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let has = |name: &str| headers.iter().any(|h| h == name);
    let needs_person =
        !(has("customer_id") || has("user_id") || has("email") || has("anonymous_id"));
    if needs_person {
        bail!(
            "{}:1: the header needs a customer_id, user_id or email column",
            imp.file
        );
    }
    if kind == Kind::Orders {
        for column in ["order_id", "timestamp", "revenue"] {
            if !has(column) {
                bail!(
                    "{}:1: the header needs an {column} column (orders need order_id, timestamp, revenue)",
                    imp.file
                );
            }
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let cols: HashMap<&str, &str> = headers
                    .iter()
                    .map(String::as_str)
                    .zip(record.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let raw = record.iter().collect::<Vec<_>>().join(",");
                let row = match kind {
                    Kind::Orders => order_row(&cols, currency),
                    Kind::Customers => customer_row(&cols, &raw),
                    Kind::Events => event_row(&cols, &raw),
                };
                imp.accept(line, &raw, row)?;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                imp.rows += 1;
                imp.reject(line, "", &row_error("row", e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// `userId` (or an anonymous id derived from the e-mail) and the e-mail as a trait.
fn person(cols: &HashMap<&str, &str>, message: &mut Map<String, Value>) -> Result<(), RowError> {
    let user = cols.get("customer_id").or_else(|| cols.get("user_id"));
    let email = cols.get("email");
    if let Some(u) = user {
        message.insert("userId".into(), json!(u));
    }
    if let Some(a) = cols.get("anonymous_id") {
        message.insert("anonymousId".into(), json!(a));
    }
    if let Some(e) = email {
        message.insert("context".into(), json!({"traits": {"email": e}}));
        if user.is_none() && !message.contains_key("anonymousId") {
            // Segment messages need a userId or anonymousId; an e-mail alone identifies
            // the person through the email identifier, this id only satisfies the spec.
            message.insert(
                "anonymousId".into(),
                json!(format!("email:{}", e.to_lowercase())),
            );
        }
    }
    if !message.contains_key("userId") && !message.contains_key("anonymousId") {
        return Err(row_error(
            "customer_id",
            "empty: a customer_id, user_id or email is required",
        ));
    }
    Ok(())
}

fn timestamp(cols: &HashMap<&str, &str>, names: &[&str]) -> Result<Option<String>, RowError> {
    for name in names {
        if let Some(raw) = cols.get(name) {
            let t = parse_timestamp(raw).map_err(|e| row_error(name, e))?;
            return Ok(Some(prossimo_model::format_timestamp(&t)));
        }
    }
    Ok(None)
}

fn order_row(cols: &HashMap<&str, &str>, default_currency: &str) -> Result<Value, RowError> {
    let mut m = Map::new();
    person(cols, &mut m)?;
    let order_id = cols
        .get("order_id")
        .ok_or_else(|| row_error("order_id", "empty"))?;
    let ts = timestamp(cols, &["timestamp"])?.ok_or_else(|| row_error("timestamp", "empty"))?;
    let revenue_raw = cols
        .get("revenue")
        .ok_or_else(|| row_error("revenue", "empty"))?;
    let revenue: f64 = revenue_raw
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite())
        .ok_or_else(|| row_error("revenue", format!("{revenue_raw:?} is not a number")))?;
    let currency = cols
        .get("currency")
        .copied()
        .unwrap_or(default_currency)
        .to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(row_error(
            "currency",
            format!("{currency:?} is not an ISO 4217 code like EUR"),
        ));
    }
    let mut properties = json!({"order_id": order_id, "revenue": revenue, "currency": currency});
    if let Some(channel) = cols.get("channel") {
        properties["channel"] = json!(channel);
    }
    m.insert("type".into(), json!("track"));
    m.insert("event".into(), json!(prossimo_model::ORDER_COMPLETED));
    m.insert("messageId".into(), json!(format!("order-{order_id}")));
    m.insert("timestamp".into(), json!(ts));
    m.insert("properties".into(), properties);
    Ok(Value::Object(m))
}

fn customer_row(cols: &HashMap<&str, &str>, raw: &str) -> Result<Value, RowError> {
    let mut m = Map::new();
    person(cols, &mut m)?;
    let traits: Map<String, Value> = cols
        .iter()
        .filter(|(k, _)| {
            !matches!(
                **k,
                "customer_id" | "user_id" | "anonymous_id" | "timestamp"
            )
        })
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    m.insert("type".into(), json!("identify"));
    m.insert("traits".into(), Value::Object(traits));
    m.insert("messageId".into(), json!(stable_id("customer", raw)));
    if let Some(ts) = timestamp(cols, &["timestamp", "updated_at", "created_at"])? {
        m.insert("timestamp".into(), json!(ts));
    }
    Ok(Value::Object(m))
}

fn event_row(cols: &HashMap<&str, &str>, raw: &str) -> Result<Value, RowError> {
    let mut m = Map::new();
    person(cols, &mut m)?;
    const RESERVED: [&str; 9] = [
        "type",
        "event",
        "name",
        "customer_id",
        "user_id",
        "anonymous_id",
        "email",
        "timestamp",
        "message_id",
    ];
    let properties: Map<String, Value> = cols
        .iter()
        .filter(|(k, _)| !RESERVED.contains(k))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.parse::<f64>().map_or_else(|_| json!(v), |n| json!(n)),
            )
        })
        .collect();
    m.insert(
        "type".into(),
        json!(cols.get("type").copied().unwrap_or("track")),
    );
    for (column, field) in [("event", "event"), ("name", "name")] {
        if let Some(v) = cols.get(column) {
            m.insert(field.into(), json!(v));
        }
    }
    let id = cols
        .get("message_id")
        .map_or_else(|| stable_id("import", raw), |s| s.to_string());
    m.insert("messageId".into(), json!(id));
    if let Some(ts) = timestamp(cols, &["timestamp"])? {
        m.insert("timestamp".into(), json!(ts));
    }
    m.insert("properties".into(), Value::Object(properties));
    Ok(Value::Object(m))
}

fn read_cdnow(reader: impl BufRead, currency: &str, imp: &mut Importer) -> Result<()> {
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: read error", imp.file))?;
        let number = i as u64 + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || (number == 1 && fields[0].parse::<u64>().is_err()) {
            continue; // blank line or the header
        }
        let row = cdnow_row(&fields, number, currency);
        imp.accept(number, &line, row)?;
    }
    Ok(())
}

fn cdnow_row(fields: &[&str], line: u64, currency: &str) -> Result<Value, RowError> {
    let [customer, date, cds, dollars] = fields else {
        return Err(row_error(
            "row",
            format!(
                "expected 4 columns (customer_id date number_of_cds dollar_value), found {}",
                fields.len()
            ),
        ));
    };
    let day = chrono::NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| row_error("date", format!("{date:?} is not YYYYMMDD")))?;
    let quantity: u64 = cds
        .parse()
        .map_err(|_| row_error("number_of_cds", format!("{cds:?} is not a whole number")))?;
    let revenue: f64 = dollars
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite())
        .ok_or_else(|| row_error("dollar_value", format!("{dollars:?} is not a number")))?;
    // Same-day repeat purchases exist in CDNOW; the line number keeps them apart.
    let order_id = format!("cdnow-{customer}-{date}-{line}");
    Ok(json!({
        "type": "track",
        "event": prossimo_model::ORDER_COMPLETED,
        "userId": customer,
        "messageId": format!("order-{order_id}"),
        "timestamp": format!("{}T00:00:00Z", day.format("%Y-%m-%d")),
        "properties": {"order_id": order_id, "revenue": revenue, "currency": currency, "quantity": quantity},
    }))
}
