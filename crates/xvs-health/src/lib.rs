//! What xvsd decides, without I/O (DESIGN.md, "Decide without I/O"): the config file
//! (`config.rs`), a real server's health from its checks' results (`health.rs`), the
//! state of every service (`state.rs`: servers' checks, weights, quorum) and the ipvsadm
//! rules the config and the state ask for (`desired.rs`), what the metrics and the
//! status page show (`report.rs`), and keepalived's configuration translated
//! (`keepalived.rs`). xvsd only runs the
//! checks, feeds their results in, and applies the rules.
#![forbid(unsafe_code)]

pub mod config;
pub mod desired;
pub mod health;
pub mod keepalived;
pub mod report;
pub mod state;
