//! `vigie eval`: the classifier's metrics on a labelled file, and optionally a report with its
//! charts.

use crate::config::Config;
use anyhow::Result;
use std::path::PathBuf;
use vigie_analyse::experiment::eval::GroupBy;

/// `vigie eval` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Labelled JSONL file.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Only this label.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write a PR curve, a score histogram, a reliability diagram and index.html.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Also the metrics per group: the language Vigie detects, the crisis type (`event`) or
    /// the crisis of each post.
    #[arg(long, value_name = "GROUP")]
    by: Option<By>,
}

/// What `--by` groups by.
#[derive(Clone, Copy, clap::ValueEnum)]
enum By {
    Lang,
    Event,
    Crisis,
}

impl super::Cmd for Args {
    fn run(&self, config: &Config) -> Result<()> {
        let ev = vigie_analyse::experiment::eval::run(
            &config.experiment_settings()?,
            &self.data,
            self.label.as_deref(),
            self.by.map(|by| match by {
                By::Lang => GroupBy::Lang,
                By::Event => GroupBy::Event,
                By::Crisis => GroupBy::Crisis,
            }),
        )?;
        if self.json {
            println!("{}", ev.to_json()?);
        } else {
            print!("{}", ev.text());
        }
        if let Some(dir) = &self.report {
            let index = ev.write_report(dir)?;
            if !self.json {
                println!("report: {}", index.display());
            }
        }
        Ok(())
    }
}
