//! The IPVS model of xvs, with no I/O: services and real servers, the rules that change
//! them (and IPVS's errors), ipvsadm's command line and listings, and the schedulers.
//! The command-line tool, the daemon, the datapath loader and the tests all use it.

pub mod cli;
pub mod estimator;
pub mod listing;
pub mod model;
pub mod restore;
pub mod sched;
pub mod table;
pub mod text;
