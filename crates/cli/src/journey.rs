//! `prossimo journey`: journeys from the command line, on the store directly (the same
//! service as the API and the console).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use prossimo_journeys::{
    Definition, JourneyError, JourneyInput, Journeys, LifecycleAction, change_journey_state,
    check_definition, publish_journey, save_journey,
};
use prossimo_store::Store;
use serde_json::Value;

/// Who the journey's history names for what the CLI did.
const ACTOR: &str = "cli";

#[derive(Subcommand)]
pub enum JourneyCommand {
    /// List the journeys with their state and live version.
    List,
    /// Show one journey: its draft, versions and history.
    Show { slug: String },
    /// Check a journey's JSON file; prints every problem with its step and field.
    Validate { file: PathBuf },
    /// Create a journey, or replace its draft, from a JSON file (see docs/journeys.md).
    Save {
        slug: String,
        file: PathBuf,
        /// A human name [default: the slug, or the journey's when it exists].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Check the draft whole and publish it as the next version.
    Publish { slug: String },
    /// Stop new entries; instances wait where they are.
    Pause { slug: String },
    /// Let people enter again.
    Resume { slug: String },
    /// End the journey for good (kept with its history).
    Archive { slug: String },
}

/// Reads a journey's JSON file; a file that is not JSON, or not a journey's shape, is
/// refused with its line and column in the file.
fn read(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    // serde names the field and, read from the text, where it is.
    serde_json::from_str::<Definition>(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    Ok(value)
}

/// Every problem, one a line, under the file's name.
fn explain(e: JourneyError, origin: &str) -> anyhow::Error {
    match e {
        JourneyError::Problems(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    let at = match (p.line, p.column) {
                        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
                        _ => String::new(),
                    };
                    let step = p
                        .step
                        .as_ref()
                        .map(|s| format!("step {s:?}, "))
                        .unwrap_or_default();
                    format!("{origin}: {step}{}: {}{at}", p.field, p.reason)
                })
                .collect();
            anyhow::anyhow!("{} problem(s):\n{}", problems.len(), lines.join("\n"))
        }
        JourneyError::Shape(message) => anyhow::anyhow!("{origin}: {message}"),
        JourneyError::Store(e) => e.into(),
    }
}

pub fn run(store: &Arc<Store>, command: JourneyCommand) -> Result<()> {
    let journeys = Journeys::of(store)?;
    match command {
        JourneyCommand::List => {
            let all = journeys.list()?;
            if all.is_empty() {
                println!("no journeys yet: `prossimo journey save SLUG FILE`");
            }
            for j in all {
                let live = j
                    .live_version
                    .map_or_else(|| "-".to_owned(), |v| format!("v{v}"));
                println!(
                    "{:<28} {:<10} {:>4}  {}",
                    j.slug,
                    j.state.as_str(),
                    live,
                    j.name
                );
            }
        }
        JourneyCommand::Show { slug } => {
            let j = journeys
                .get(&slug)?
                .with_context(|| format!("no journey {slug:?}"))?;
            let live = j
                .live_version
                .map_or_else(|| "none".to_owned(), |v| format!("v{v}"));
            println!(
                "{} ({}): {}, live version {live}",
                j.name,
                j.slug,
                j.state.as_str()
            );
            if !j.description.is_empty() {
                println!("{}", j.description);
            }
            println!("\n{}\n", serde_json::to_string_pretty(&j.draft)?);
            for v in journeys.versions(j.id)? {
                println!(
                    "v{}  published {}",
                    v.version,
                    prossimo_model::format_millis(v.published_at).unwrap_or_default()
                );
            }
            for c in journeys.history(j.id)? {
                let version = c.version.map(|v| format!(" v{v}")).unwrap_or_default();
                println!(
                    "{}  {}{version} by {}",
                    prossimo_model::format_millis(c.at).unwrap_or_default(),
                    c.action,
                    c.actor
                );
            }
        }
        JourneyCommand::Validate { file } => {
            let definition = read(&file)?;
            let origin = file.display().to_string();
            let journey = check_definition(store, &definition).map_err(|e| explain(e, &origin))?;
            println!(
                "{origin}: a valid journey of {} step(s)",
                journey.definition.steps.len()
            );
        }
        JourneyCommand::Save {
            slug,
            file,
            name,
            description,
        } => {
            let definition = read(&file)?;
            let existing = journeys.get(&slug)?;
            let name = name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| existing.as_ref().map(|j| j.name.clone()))
                .unwrap_or_else(|| slug.clone());
            let input = JourneyInput {
                slug,
                name,
                description,
                definition,
            };
            let origin = file.display().to_string();
            let saved = save_journey(store, None, &input, existing.is_some(), ACTOR)
                .map_err(|e| explain(e, &origin))?;
            println!(
                "saved the draft of {} ({}); publish it with `prossimo journey publish {}`",
                saved.slug,
                saved.state.as_str(),
                saved.slug
            );
        }
        JourneyCommand::Publish { slug } => {
            let (journey, version) = publish_journey(store, None, &slug, ACTOR)
                .map_err(|e| explain(e, &format!("journey {slug}")))?;
            println!(
                "published {} v{version} ({})",
                journey.slug,
                journey.state.as_str()
            );
        }
        JourneyCommand::Pause { slug } => change(store, &slug, LifecycleAction::Pause)?,
        JourneyCommand::Resume { slug } => change(store, &slug, LifecycleAction::Resume)?,
        JourneyCommand::Archive { slug } => change(store, &slug, LifecycleAction::Archive)?,
    }
    Ok(())
}

fn change(store: &Store, slug: &str, action: LifecycleAction) -> Result<()> {
    match change_journey_state(store, None, slug, action, ACTOR) {
        Ok(journey) => {
            println!("{}: {}", journey.slug, journey.state.as_str());
            Ok(())
        }
        Err(JourneyError::Store(e)) => bail!("journey {slug}: {e}"),
        Err(e) => Err(explain(e, &format!("journey {slug}"))),
    }
}
