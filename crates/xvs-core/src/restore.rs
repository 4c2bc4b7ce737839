//! `-R`: many ipvsadm command lines from one input, applied all or nothing.
//!
//! ipvsadm applies a restore line by line as it reads it. A line it cannot parse (a
//! `fail()`: bad option, bad address) stops it with exit 2, the lines before it applied; a
//! line the kernel refuses ("Service already exists", "No such destination") is reported
//! and ipvsadm goes on with the next, exiting with the last line's status. Either way the
//! table can end up half restored.
//!
//! xvsadm reads the whole input first, checks every line against a copy of the table, and
//! only then hands the finished table over to be stored as one update: the first bad
//! line of either kind changes nothing, and the error names its line (`line 3: Destination
//! already exists`), with the exit code ipvsadm gives that kind of error (2 or 255). A
//! restore that is to be repeated or run at boot thus never leaves a table half made.

use std::fmt;

use crate::{
    cli::{self, CliError, Command},
    listing,
    table::{IpvsError, Table},
    text::Resolver,
};

/// ipvsadm's restore tokenizer: words split on space, tab and CR; the words `ipvsadm`
/// (and `xvsadm`) dropped, so lines may start with the program name.
pub fn tokenize(line: &str) -> Vec<String> {
    line.split([' ', '\t', '\r', '\n'])
        .filter(|word| !word.is_empty() && *word != "ipvsadm" && *word != "xvsadm")
        .map(str::to_string)
        .collect()
}

/// Why a restore was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Cli(CliError),
    Ipvs(IpvsError),
    /// A command xvsadm cannot run inside a restore yet.
    Unsupported(String),
}

/// A refused restore: which line (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    pub line: usize,
    pub refusal: Refusal,
}

impl RestoreError {
    pub fn exit_code(&self) -> u8 {
        match &self.refusal {
            Refusal::Cli(e) => e.exit_code(),
            Refusal::Ipvs(_) => 255,
            Refusal::Unsupported(_) => 2,
        }
    }

    pub fn message(&self, program: &str) -> String {
        let why = match &self.refusal {
            Refusal::Cli(e) => e.message(program),
            Refusal::Ipvs(e) => e.to_string(),
            Refusal::Unsupported(what) => what.clone(),
        };
        format!("line {}: {}", self.line, why.trim_end())
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("ipvsadm"))
    }
}

/// Applies every line of `input` to `table`. On success `table` holds the result and the
/// return value is what listing lines inside the input printed; on failure `table` is as
/// it was.
pub fn restore(
    input: &str,
    table: &mut Table,
    resolver: &dyn Resolver,
    program: &str,
) -> Result<String, RestoreError> {
    let mut work = table.clone();
    let mut output = String::new();
    for (index, line) in input.lines().enumerate() {
        let refuse = |refusal| RestoreError {
            line: index + 1,
            refusal,
        };
        let words = tokenize(line);
        // A comment line would make ipvsadm fail; xvsadm skips it.
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        let command = cli::parse(&words, resolver).map_err(|e| refuse(Refusal::Cli(e)))?;
        match &command {
            Command::Restore => return Err(refuse(Refusal::Cli(CliError::TryHelp))),
            Command::StartDaemon(_) | Command::StopDaemon(_) => {
                return Err(refuse(Refusal::Unsupported(
                    "connection sync daemons are not available in xvs yet".into(),
                )));
            }
            Command::List { what, format } => output.push_str(
                &listing::list(&work, *what, *format, resolver)
                    .map_err(|e| refuse(Refusal::Ipvs(e)))?,
            ),
            Command::Save { numeric } => output.push_str(&listing::save(&work, *numeric, resolver)),
            Command::Help => output.push_str(&cli::usage(program)),
            Command::Version => {
                output.push_str(cli::VERSION_LINE);
                output.push('\n');
            }
            _ => command
                .apply(&mut work)
                .map_err(|e| refuse(Refusal::Ipvs(e)))?,
        }
    }
    *table = work;
    Ok(output)
}
