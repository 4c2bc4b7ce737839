//! The one way to change a namespace's table: lock, read, edit, plan and write, attach.
//! xvsadm runs every changing command through it, and xvsd takes real servers out and
//! brings them back through it, so the two never differ in how a change lands.

use std::time::Duration;

use xvs_core::table::Table;

use crate::{Director, Error, lock::TableLock};

/// How a change is made.
#[derive(Debug, Clone, Copy)]
pub struct ChangeOptions {
    /// Read the traffic counters too: needed when the edit may zero them (`-Z`, `-R`); on
    /// a large table reading them costs.
    pub with_counters: bool,
    /// Attach the director to every interface of the namespace once it has a service, as
    /// IPVS hooks every interface.
    pub attach: bool,
    /// How long to wait for another writer to finish its own change.
    pub patience: Duration,
}

impl Default for ChangeOptions {
    fn default() -> Self {
        ChangeOptions {
            with_counters: false,
            attach: true,
            patience: Duration::from_secs(30),
        }
    }
}

/// Why a change did not land. In every case the table is as it was.
#[derive(Debug)]
pub enum ChangeError<E> {
    /// The edit itself refused (the caller's own error).
    Edit(E),
    /// The datapath could not be reached, read or created (lock, permission, layout).
    Reach(Error),
    /// The datapath refused to store the new table (full maps, too many real servers).
    Store(Error),
}

impl Director {
    /// Applies `edit` to this namespace's table and stores the result, holding the
    /// namespace's lock throughout. The director is created only when a change leaves
    /// something to keep (`-C` where xvs never ran creates nothing).
    pub fn change<T, E>(
        options: ChangeOptions,
        edit: impl FnOnce(&mut Table) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, ChangeError<E>> {
        let reach = ChangeError::Reach;
        let _lock = TableLock::acquire(options.patience).map_err(|e| reach(Error::from(e)))?;
        let existing = Director::find().map_err(reach)?;
        let snapshot = match &existing {
            Some(director) if options.with_counters => Some(director.load().map_err(reach)?),
            Some(director) => Some(director.load_for_change().map_err(reach)?),
            None => None,
        };
        let mut table = snapshot
            .as_ref()
            .map_or_else(Table::default, |s| s.table.clone());
        let output = edit(&mut table).map_err(ChangeError::Edit)?;
        let (mut director, snapshot) = match (existing, snapshot) {
            (Some(director), Some(snapshot)) => (director, snapshot),
            _ => {
                if table == Table::default() {
                    return Ok(output);
                }
                let director = Director::find_or_create().map_err(reach)?;
                let snapshot = director.load().map_err(reach)?;
                (director, snapshot)
            }
        };
        // The fwmark loop is made ready before a table that needs it is stored (so that a
        // loop that cannot be made leaves the table as it was), and taken down after the
        // last fwmark service has gone.
        let marks = crate::fwmark::marks_of(&table);
        if options.attach && !marks.is_empty() {
            director
                .sync_fwmark_loop(&marks)
                .map_err(ChangeError::Store)?;
        }
        director
            .store(&snapshot, &table)
            .map_err(ChangeError::Store)?;
        if options.attach {
            if marks.is_empty() {
                director
                    .sync_fwmark_loop(&marks)
                    .map_err(ChangeError::Store)?;
            }
            if !table.services.is_empty() {
                director.attach_everywhere().map_err(reach)?;
            }
        }
        Ok(output)
    }
}
