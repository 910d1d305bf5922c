//! `prossimo segment`: audiences from the command line, on the store directly (a running
//! server picks saved changes up within a second).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_decide::{
    AudienceError, DRAFT_SLUG, DecideError, Engine, check_draft, delete_audience, preview,
    save_audience,
};
use prossimo_segments::{format, parse};
use prossimo_store::{ProfileKey, Store};

#[derive(Subcommand)]
pub enum SegmentCommand {
    /// List the saved segments with their current size.
    List,
    /// Show one segment: definition, size, size over time.
    Show { slug: String },
    /// Check a definition; prints its canonical form, or the error at its line and column.
    Validate(Definition),
    /// Count (and sample) the profiles a definition selects now, without saving it.
    Preview {
        #[command(flatten)]
        definition: Definition,
        /// Profiles to list.
        #[arg(long, default_value_t = 10)]
        sample: usize,
    },
    /// Create or replace a segment.
    Save {
        /// The segment's stable name in URLs and `segment "…"` references.
        slug: String,
        #[command(flatten)]
        definition: Definition,
        /// A human name [default: the slug].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a segment (refused while another segment refers to it).
    Delete { slug: String },
    /// List a segment's current members.
    Members {
        slug: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Recompute every segment for every profile from the stored events now, and write
    /// the differences (entries and exits) as a running server would.
    Recompute,
}

/// A definition given inline or in a file.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Definition {
    /// The definition text.
    #[arg(long, value_name = "TEXT")]
    definition: Option<String>,
    /// A file holding the definition (`#` comments allowed).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

impl Definition {
    /// The text and the name errors should point at.
    fn read(&self) -> Result<(String, String)> {
        match (&self.definition, &self.file) {
            (Some(text), _) => Ok((text.clone(), "definition".into())),
            (None, Some(path)) => Ok((
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                path.display().to_string(),
            )),
            (None, None) => bail!("give --definition TEXT or --file FILE"),
        }
    }
}

/// `file:line:column: message` and the caret display, like a compiler.
fn explain(e: DecideError, origin: &str, slug: &str) -> anyhow::Error {
    let Some(error) = e.definition_error(slug) else {
        return e.into();
    };
    // The display's first line repeats the position; keep its caret lines.
    let shown = error.to_string();
    let caret = shown.split_once('\n').map_or("", |(_, rest)| rest);
    anyhow::anyhow!(
        "{origin}:{}:{}: {}\n{caret}",
        error.line(),
        error.column(),
        error.message()
    )
}

pub fn run(store: &Arc<Store>, command: SegmentCommand) -> Result<()> {
    let audiences = Audiences::of(store)?;
    match command {
        SegmentCommand::List => {
            let segments = audiences.segments()?;
            if segments.is_empty() {
                println!("no segments yet: `prossimo segment save SLUG --definition …`");
            }
            for s in segments {
                let size = audiences.segment_sizes(s.id)?.last().map_or(0, |&(_, n)| n);
                println!("{:<28} {:>9}  {}", s.slug, size, s.name);
            }
        }
        SegmentCommand::Show { slug } => {
            let s = audiences
                .segment(&slug)?
                .with_context(|| format!("no segment {slug:?}"))?;
            println!("{} ({})", s.name, s.slug);
            if !s.description.is_empty() {
                println!("{}", s.description);
            }
            println!("\n{}\n", s.definition.trim());
            for (hour, size) in audiences.segment_sizes(s.id)? {
                println!(
                    "{}  {size}",
                    prossimo_model::format_millis(hour).unwrap_or_default()
                );
            }
        }
        SegmentCommand::Validate(definition) => {
            let (text, origin) = definition.read()?;
            check_draft(store, &text).map_err(|e| explain(e, &origin, DRAFT_SLUG))?;
            let expr = parse(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            println!("{}", format(&expr));
        }
        SegmentCommand::Preview { definition, sample } => {
            let (text, origin) = definition.read()?;
            check_draft(store, &text).map_err(|e| explain(e, &origin, DRAFT_SLUG))?;
            let started = Instant::now();
            let now = store.now_ms();
            let result = preview(store, &text, now, sample)?;
            println!(
                "{} of {} profiles ({} ms)",
                result.count,
                result.profiles,
                started.elapsed().as_millis()
            );
            for id in result.sample {
                if let Some(p) = store.profile(&ProfileKey::Id(id), &[])? {
                    let email = p.traits.get("email").and_then(|e| e.as_str()).unwrap_or("");
                    println!(
                        "  {:>8}  {:<24} {email}",
                        p.id,
                        p.name.as_deref().unwrap_or("")
                    );
                }
            }
        }
        SegmentCommand::Save {
            slug,
            definition,
            name,
            description,
        } => {
            let (text, origin) = definition.read()?;
            let input = SegmentInput {
                name: name.unwrap_or_else(|| slug.clone()),
                slug: slug.clone(),
                description,
                definition: text,
            };
            let existing = audiences.segment(&slug)?.map(|s| s.slug);
            // No bus here: a running server sees the change at its next look at the store.
            match save_audience(store, None, &input, existing.as_deref()) {
                Ok(_) if existing.is_some() => println!("updated segment {slug}"),
                Ok(_) => println!("created segment {slug}"),
                Err(AudienceError::Definition(e)) => return Err(explain(e, &origin, &slug)),
                Err(e) => return Err(e.into()),
            }
            println!(
                "a running `prossimo serve` evaluates it within a second; without one, run `prossimo segment recompute`"
            );
        }
        SegmentCommand::Delete { slug } => {
            delete_audience(store, None, &slug)
                .map_err(|e| anyhow::anyhow!("cannot delete {slug:?}: {e}"))?;
            println!("deleted segment {slug}");
        }
        SegmentCommand::Members { slug, limit } => {
            let s = audiences
                .segment(&slug)?
                .with_context(|| format!("no segment {slug:?}"))?;
            for m in audiences.segment_members(s.id, None, limit)? {
                println!(
                    "{:>8}  since {}",
                    m.profile_id,
                    prossimo_model::format_millis(m.entered_at).unwrap_or_default()
                );
            }
        }
        SegmentCommand::Recompute => {
            let Some(_lease) = store.try_lease("decider")? else {
                bail!(
                    "a running `prossimo serve` keeps the audiences of this store live (it holds the decider lease); its memberships are current"
                );
            };
            let started = Instant::now();
            let engine = Engine::open(Arc::clone(store), store.clock())?;
            let seconds = started.elapsed().as_secs_f64();
            let mut sizes: Vec<(String, usize)> = engine
                .memberships()
                .into_iter()
                .map(|(slug, members)| (slug, members.len()))
                .collect();
            sizes.sort();
            for (slug, size) in sizes {
                println!("{slug:<28} {size:>9}");
            }
            println!(
                "recomputed in {seconds:.2} s ({} profiles with state)",
                engine.tracked_profiles()
            );
        }
    }
    Ok(())
}
