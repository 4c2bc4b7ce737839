//! xvsadm — ipvsadm's command line over xvs: the same commands, the same output, the same
//! exit codes, acting on the XDP director's tables of the network namespace it runs in.

mod resolver;

use std::{
    io::{Read, Write},
    process::ExitCode,
    time::Duration,
};

use resolver::SystemResolver;
use xvs_core::{
    cli::{self, Command, ListWhat},
    listing, restore,
    table::Table,
};
use xvs_datapath::{
    Director,
    lock::TableLock,
    tables::{Snapshot, StoreError},
};

/// Set to 0 to keep xvsadm from attaching the director to the namespace's interfaces.
const AUTO_ATTACH_ENV: &str = "XVS_AUTO_ATTACH";

/// How long a change waits for another xvsadm to finish its own.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// ipvsadm's exit codes (shared/reference/ipvsadm.md §3.1).
const EXIT_LIST_FAILED: u8 = 1;
const EXIT_INIT_FAILED: u8 = 2;
const EXIT_KERNEL_REFUSED: u8 = 255;

/// One line for stderr and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>, code: u8) -> Failure {
        Failure {
            message: message.into(),
            code,
        }
    }

    /// The datapath could not be reached: where ipvsadm says it cannot initialize IPVS.
    fn datapath(error: impl std::fmt::Display) -> Failure {
        Failure::new(format!("Can't initialize xvs: {error}"), EXIT_INIT_FAILED)
    }
}

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are taken lossily (they then fail as ipvsadm's would),
    // rather than panicking.
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = args.next().unwrap_or_else(|| "xvsadm".into());
    let args: Vec<String> = args.collect();
    let resolver = SystemResolver;
    let result = cli::parse(&args, &resolver)
        .map_err(|e| Failure::new(e.message(&program), e.exit_code()))
        .and_then(|command| execute(command, &program, &resolver));
    match result {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`xvsadm -L | head`) is not an error worth a panic.
            let _ = stdout.write_all(output.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs a parsed command; what it prints on success.
fn execute(command: Command, program: &str, resolver: &SystemResolver) -> Result<String, Failure> {
    match command {
        Command::Help => Ok(cli::usage(program)),
        Command::Version => Ok(format!("{}\n", cli::VERSION_LINE)),
        Command::StartDaemon(_) | Command::StopDaemon(_) => Err(Failure::new(
            "Connection sync daemons are not available in xvs yet",
            EXIT_KERNEL_REFUSED,
        )),
        Command::List { what, format } => {
            if what == ListWhat::Connections {
                let entries = match Director::find().map_err(Failure::datapath)? {
                    Some(director) => director.connections().map_err(Failure::datapath)?,
                    None => Vec::new(),
                };
                let mut out = String::new();
                listing::list_connections(&mut out, &entries, format, resolver);
                return Ok(out);
            }
            let table = current_table()?;
            listing::list(&table, what, format, resolver)
                .map_err(|e| Failure::new(e.to_string(), EXIT_LIST_FAILED))
        }
        Command::Save { numeric } => Ok(listing::save(&current_table()?, numeric, resolver)),
        Command::Restore => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|e| {
                Failure::new(format!("cannot read the rules: {e}"), EXIT_INIT_FAILED)
            })?;
            change(true, |table| {
                restore::restore(&input, table, resolver, program)
                    .map_err(|e| Failure::new(e.message(program), e.exit_code()))
            })
        }
        command => change(matches!(command, Command::Zero(_)), |table| {
            command
                .apply(table)
                .map(|()| String::new())
                .map_err(|e| Failure::new(e.to_string(), EXIT_KERNEL_REFUSED))
        }),
    }
}

/// The namespace's table for reading: empty (with default timeouts) if xvs was never
/// used here.
fn current_table() -> Result<Table, Failure> {
    match Director::find().map_err(Failure::datapath)? {
        Some(director) => Ok(director.load().map_err(Failure::datapath)?.table),
        None => Ok(Table::default()),
    }
}

/// Applies `edit` to the namespace's table and stores the result, holding the namespace's
/// lock throughout. The director is created only when a change succeeds. Counters are read
/// only when the change may zero them (`-Z`, `-R`): on a large table reading them costs.
fn change(
    with_counters: bool,
    edit: impl FnOnce(&mut Table) -> Result<String, Failure>,
) -> Result<String, Failure> {
    let _lock = TableLock::acquire(LOCK_PATIENCE).map_err(Failure::datapath)?;
    let existing = Director::find().map_err(Failure::datapath)?;
    let snapshot = match &existing {
        Some(director) if with_counters => Some(director.load().map_err(Failure::datapath)?),
        Some(director) => Some(director.load_for_change().map_err(Failure::datapath)?),
        None => None,
    };
    let mut table = snapshot
        .as_ref()
        .map_or_else(Table::default, |s| s.table.clone());
    let output = edit(&mut table)?;
    let (mut director, snapshot) = match (existing, snapshot) {
        (Some(director), Some(snapshot)) => (director, snapshot),
        _ => {
            if table == Table::default() {
                // Nothing to keep (e.g. `-C` where xvs never ran): no director needed.
                return Ok(output);
            }
            let director = Director::find_or_create().map_err(Failure::datapath)?;
            let snapshot: Snapshot = director.load().map_err(Failure::datapath)?;
            (director, snapshot)
        }
    };
    director.store(&snapshot, &table).map_err(|e| match e {
        StoreError::Full(_) => Failure::new("Memory allocation problem", EXIT_KERNEL_REFUSED),
        StoreError::Map(e) => Failure::new(format!("xvs: {e}"), EXIT_KERNEL_REFUSED),
    })?;
    // As IPVS hooks every interface, the director goes on every interface once it has a
    // service (XVS_AUTO_ATTACH=0 leaves attaching to `xvsd attach`).
    if !table.services.is_empty() && std::env::var(AUTO_ATTACH_ENV).as_deref() != Ok("0") {
        director.attach_everywhere().map_err(Failure::datapath)?;
    }
    Ok(output)
}
