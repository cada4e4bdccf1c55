//! What `optimize` and `stress` share as batch jobs: the results file (named after the job, never overwritten by
//! another job, resumed or refused when it holds an unfinished run), Ctrl-C as a stop flag, the progress bar.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sextant_backtest::sweep::{PointLines, Shard, SweepHeader, read_results};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The options every batch job takes: slicing, the results file, resuming, threads.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Run only slice i of n of the job (points or paths i-1, i-1+n, ...), e.g. 2/8.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Results file (JSON lines: a header, then one line per point or path, in index order)
    /// [default: CONFIG-STEM.ID.sweep.jsonl or .stress.jsonl, ID a digest of the job].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run: keep what the results file holds, run the rest.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Start over even if the results file holds an unfinished run of this job.
    #[arg(long)]
    pub fresh: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl BatchArgs {
    /// The slice to run (the whole job by default).
    pub fn shard(&self) -> Result<Shard> {
        Ok(self.shard.as_deref().map(Shard::parse).transpose()?.unwrap_or(Shard::ALL))
    }

    /// Worker threads: as asked, or every core.
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
    }
}

/// The default results file: `STEM.ID.sweep.jsonl` / `STEM.ID.shard-I-of-N.jsonl` (`kind` for sweep), `ID` the
/// job's digest, so different jobs of one config never overwrite each other.
pub fn default_out(config: &Path, header: &SweepHeader, kind: &str) -> PathBuf {
    let stem = config.file_stem().map_or("job".into(), |s| s.to_string_lossy().to_string());
    let id = &header.id()[..6];
    let shard = header.shard;
    PathBuf::from(if shard == Shard::ALL {
        format!("{stem}.{id}.{kind}.jsonl")
    } else {
        format!("{stem}.{id}.{kind}-shard-{}-of-{}.jsonl", shard.index, shard.count)
    })
}

/// What a results file already holds.
enum Existing {
    None,
    /// This many points of this job's shard.
    Same(usize),
    Other,
}

fn existing(path: &Path, header: &SweepHeader) -> Existing {
    match std::fs::metadata(path) {
        Err(_) => return Existing::None,
        Ok(m) if m.len() == 0 => return Existing::None,
        Ok(_) => {}
    }
    match read_results(path) {
        // a line cut short at the end: the points before it count
        Ok((h, points)) if h == *header => Existing::Same(points.take_while(Result::is_ok).count()),
        _ => Existing::Other,
    }
}

/// A results file open for writing, with what an earlier run of the same job left in it.
pub struct Results {
    /// Line-buffered: every finished point is in the file at once, whatever stops the process after.
    pub writer: std::io::LineWriter<std::fs::File>,
    /// The earlier run's points, in index order (empty unless resuming).
    pub previous: PointLines,
    /// When resuming: the file being written beside the results, and the results it replaces at the end.
    replacing: Option<(PathBuf, PathBuf)>,
}

impl Results {
    /// Opens `path` for this job: with `resume`, the points already there are handed back to be reused; an
    /// unfinished run of this job, or anything else, is refused unless `fresh`.
    pub fn open(path: &Path, header: &SweepHeader, mine: usize, resume: bool, fresh: bool) -> Result<Self> {
        let resuming = match existing(path, header) {
            Existing::Same(done) if resume => {
                eprintln!("resuming: {done} of {mine} points already in {}", path.display());
                true
            }
            _ if resume => bail!("--resume: {} holds no run of this job to resume", path.display()),
            Existing::Same(done) if done < mine && !fresh => bail!(
                "{} holds an unfinished run of this job ({done} of {mine} points): --resume to finish it, --fresh to \
                 start over",
                path.display()
            ),
            Existing::Other if !fresh => bail!(
                "{} already exists and is not this job's results: choose another --out, or --fresh to replace it",
                path.display()
            ),
            _ => false,
        };
        // Resuming reads the results as they are and writes the whole file anew beside them, replacing them only
        // once it is complete: a crash meanwhile leaves them untouched. A line cut short by a crash can only be the
        // last one written: the points before it are kept, it and anything after it run again.
        let (previous, target, replacing): (PointLines, PathBuf, _) = if resuming {
            let partial = path.with_extension("jsonl.partial");
            let lines = Box::new(read_results(path)?.1.take_while(Result::is_ok));
            (lines, partial.clone(), Some((partial, path.to_path_buf())))
        } else {
            (Box::new(std::iter::empty()), path.to_path_buf(), None)
        };
        let file = std::fs::File::create(&target).with_context(|| format!("cannot create {}", target.display()))?;
        let mut writer = std::io::LineWriter::new(file);
        writeln!(writer, "{}", serde_json::to_string(header)?)?;
        Ok(Results { writer, previous, replacing })
    }

    /// Flushes the file; a resumed run's new file replaces the results.
    pub fn close(mut self) -> Result<()> {
        self.writer.flush()?;
        if let Some((partial, path)) = &self.replacing {
            std::fs::rename(partial, path).with_context(|| format!("cannot replace {}", path.display()))?;
        }
        Ok(())
    }
}

/// A flag Ctrl-C (and SIGTERM) sets; a second Ctrl-C ends the process at once.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// A progress bar over `len` points with rate and ETA.
pub fn progress(what: &str, len: usize) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}
