//! `xvsd run CONFIG`: defines the config's virtual services, checks each real server on
//! its own thread, and when a server's health changes (after `fall` failures or `rise`
//! successes in a row) puts the table the health asks for in place through the same edit
//! transaction xvsadm uses. Services the config does not name are never touched.

use std::{collections::HashMap, net::SocketAddr, sync::mpsc, time::Duration};

use xvs_core::text::NoNames;
use xvs_datapath::{ChangeError, ChangeOptions, Director};
use xvs_health::{
    config::{Config, Protocol, Watch},
    desired,
    health::{Health, Transition},
};

use crate::check;

/// Reads and validates the config at `path`.
pub fn load(path: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Config::parse(&text).map_err(|e| format!("{path}: {e}"))
}

/// `xvsd check-config FILE`: the verdict on a config without touching anything.
pub fn check_config(path: &str) -> Result<(), String> {
    let config = load(path)?;
    println!(
        "{path}: ok ({} services, {} real servers)",
        config.services.len(),
        config.watches().len()
    );
    Ok(())
}

/// `xvsd run FILE`: runs until killed.
pub fn run(path: &str) -> Result<(), String> {
    let config = load(path)?;
    let watches = config.watches();
    let mut health: Vec<Health> = watches
        .iter()
        .map(|w| {
            let starts_up = !config.services[w.service].alpha;
            Health::new(starts_up, w.check.rise, w.check.fall)
        })
        .collect();
    let index: HashMap<(usize, SocketAddr), usize> = watches
        .iter()
        .enumerate()
        .map(|(i, w)| ((w.service, w.address), i))
        .collect();
    apply(&config, &index, &health)?;
    println!(
        "xvsd: {} services, {} real servers from {path}",
        config.services.len(),
        watches.len()
    );

    let (results, checked) = mpsc::channel();
    for (i, watch) in watches.iter().cloned().enumerate() {
        let results = results.clone();
        std::thread::Builder::new()
            .name(format!("check {}", watch.address))
            .spawn(move || watch_forever(i, &watch, &results))
            .map_err(|e| format!("cannot start a checker: {e}"))?;
    }
    drop(results);

    // A change that could not land (another writer held the lock too long, the datapath
    // was destroyed under us) is tried again with the next result.
    let mut pending = false;
    for (i, result) in checked {
        let watch = &watches[i];
        if let Some(transition) = health[i].observe(check::outcome(&result)) {
            let service = &config.services[watch.service];
            let protocol = match service.protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
            };
            let what = format!(
                "real server {} of {protocol} {}",
                watch.address, service.address
            );
            match (transition, &result) {
                (Transition::Down, Err(why)) => println!("{what} is down: {why}"),
                _ => println!("{what} is up"),
            }
            pending = true;
        }
        if pending {
            match apply(&config, &index, &health) {
                Ok(()) => pending = false,
                Err(e) => eprintln!("xvsd: the table is not updated yet: {e}"),
            }
        }
    }
    Err("every checker stopped".to_string())
}

/// Checks one real server every interval, sending each result.
fn watch_forever(i: usize, watch: &Watch, results: &mpsc::Sender<(usize, Result<(), String>)>) {
    loop {
        let result = check::run(&watch.check, watch.address);
        if results.send((i, result)).is_err() {
            return;
        }
        std::thread::sleep(watch.check.interval());
    }
}

/// Puts in place the table `config` and `health` ask for.
fn apply(
    config: &Config,
    index: &HashMap<(usize, SocketAddr), usize>,
    health: &[Health],
) -> Result<(), String> {
    let options = ChangeOptions {
        patience: Duration::from_secs(5),
        ..ChangeOptions::default()
    };
    let up = |service: usize, address: SocketAddr| {
        index
            .get(&(service, address))
            .is_some_and(|&i| health[i].is_up())
    };
    Director::change(options, |table| {
        let rules = desired::rules(config, table, &up);
        xvs_core::restore::restore(&rules, table, &NoNames, "xvsd").map(|_| ())
    })
    .map_err(|e| match e {
        ChangeError::Edit(refusal) => format!("the config's table is refused: {refusal}"),
        ChangeError::Reach(error) | ChangeError::Store(error) => error.to_string(),
    })
}
