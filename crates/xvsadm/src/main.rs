//! xvsadm — ipvsadm's command line over xvs: the same commands, the same output, the same
//! exit codes, acting on the XDP director's tables of the network namespace it runs in.

mod daemon;
mod resolver;

use std::{
    io::{Read, Write},
    process::ExitCode,
};

use resolver::SystemResolver;
use xvs_core::{
    cli::{self, Command, ListWhat},
    listing, restore,
    table::Table,
};
use xvs_datapath::{ChangeError, ChangeOptions, Director, ErrorKind};

/// Set to 0 to keep xvsadm from attaching the director to the namespace's interfaces.
const AUTO_ATTACH_ENV: &str = "XVS_AUTO_ATTACH";

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

    /// The datapath could not be reached: where ipvsadm says it cannot initialize IPVS
    /// (also when not root, in ipvsadm's words for it).
    fn datapath(error: xvs_datapath::Error) -> Failure {
        let message = match error.kind() {
            ErrorKind::Permission => "Permission denied (you must be root)".to_string(),
            _ => error.to_string(),
        };
        Failure::new(format!("Can't initialize xvs: {message}"), EXIT_INIT_FAILED)
    }

    /// The datapath refused to store a change: where the kernel refuses ipvsadm's.
    fn store(error: xvs_datapath::Error) -> Failure {
        match error.kind() {
            ErrorKind::Full => Failure::new("Memory allocation problem", EXIT_KERNEL_REFUSED),
            ErrorKind::Permission => Failure::datapath(error),
            _ => Failure::new(format!("xvs: {error}"), EXIT_KERNEL_REFUSED),
        }
    }
}

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are taken lossily (they then fail as ipvsadm's would),
    // rather than panicking.
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = args.next().unwrap_or_else(|| "xvsadm".into());
    let args: Vec<String> = args.collect();
    let resolver = SystemResolver;
    // Installed under the names of ipvsadm's wrapper scripts too (links to this binary),
    // xvs's and ipvsadm's own (the package's ipvsadm folder, for scripts that call them).
    let name = program.rsplit('/').next().unwrap_or(&program);
    let result = match name {
        "xvsadm-save" | "ipvsadm-save" => {
            save_command(name, &args).and_then(|c| execute(c, &program, &resolver))
        }
        "xvsadm-restore" | "ipvsadm-restore" if args.is_empty() => {
            replace_table(&program, &resolver)
        }
        "xvsadm-restore" | "ipvsadm-restore" => Err(Failure::new(
            format!("Usage: {name} < RULES"),
            EXIT_SCRIPT_USAGE,
        )),
        _ => cli::parse(&args, &resolver)
            .map_err(|e| Failure::new(e.message(&program), e.exit_code()))
            .and_then(|command| execute(command, &program, &resolver)),
    };
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

/// The wrapper scripts' usage errors exit 1, as ipvsadm-save's does.
const EXIT_SCRIPT_USAGE: u8 = 1;

/// `xvsadm-save [-n]`: ipvsadm-save's options, `xvsadm -S [-n]` (`name`: the name it was
/// called by, for the usage line).
fn save_command(name: &str, args: &[String]) -> Result<Command, Failure> {
    match args {
        [] => Ok(Command::Save { numeric: false }),
        [n] if n == "-n" => Ok(Command::Save { numeric: true }),
        _ => Err(Failure::new(
            format!("Usage: {name} [-n]\n  -n  numeric output (no name lookups)"),
            EXIT_SCRIPT_USAGE,
        )),
    }
}

/// `xvsadm-restore < RULES`: the table becomes the rules read, as ipvsadm-restore's
/// `ipvsadm -C` then `ipvsadm -R` make it, but in one change: a bad line changes nothing
/// (ipvsadm-restore would have cleared the table by then), and line numbers are the
/// file's. Lines starting with `#` are comments.
fn replace_table(program: &str, resolver: &SystemResolver) -> Result<String, Failure> {
    let input = read_rules()?;
    change(true, |table| {
        table.flush();
        restore::restore(&input, table, resolver, program)
            .map_err(|e| Failure::new(e.message(program), e.exit_code()))
    })
}

fn read_rules() -> Result<String, Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::new(format!("cannot read the rules: {e}"), EXIT_INIT_FAILED))?;
    Ok(input)
}

/// Runs a parsed command; what it prints on success.
fn execute(command: Command, program: &str, resolver: &SystemResolver) -> Result<String, Failure> {
    match command {
        Command::Help => Ok(cli::usage(program)),
        Command::Version => Ok(format!("{}\n", cli::VERSION_LINE)),
        Command::StartDaemon(params) => daemon::start(&params),
        Command::StopDaemon(params) => daemon::stop(&params),
        Command::List {
            what: ListWhat::Daemon,
            ..
        } => Ok(daemon::list()),
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
        Command::ListLocalAddresses(key) => {
            let mut table = Table::default();
            if let Some(director) = Director::find().map_err(Failure::datapath)? {
                table = director.load_for_change().map_err(Failure::datapath)?.table;
                director
                    .count_local_address_use(&mut table)
                    .map_err(Failure::datapath)?;
            }
            let services: Vec<_> = match key {
                Some(key) => match table.service(&key) {
                    Some(service) => vec![service],
                    None => return Err(Failure::new("No such service", EXIT_LIST_FAILED)),
                },
                None => table.services.iter().collect(),
            };
            let mut out = String::new();
            listing::list_local_addresses(&mut out, &services);
            Ok(out)
        }
        Command::Restore => {
            let input = read_rules()?;
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

/// Applies `edit` to the namespace's table through the datapath's one edit transaction.
fn change(
    with_counters: bool,
    edit: impl FnOnce(&mut Table) -> Result<String, Failure>,
) -> Result<String, Failure> {
    let options = ChangeOptions {
        with_counters,
        // XVS_AUTO_ATTACH=0 leaves attaching to `xvsd attach`.
        attach: std::env::var(AUTO_ATTACH_ENV).as_deref() != Ok("0"),
        ..ChangeOptions::default()
    };
    Director::change(options, edit).map_err(|e| match e {
        ChangeError::Edit(failure) => failure,
        ChangeError::Reach(error) => Failure::datapath(error),
        ChangeError::Store(error) => Failure::store(error),
    })
}
