//! One module per subcommand; `soak`, `probes` and `record` only with the
//! `kernel` feature (they load BPF).

pub mod analyze;
pub mod doctor;
#[cfg(feature = "kernel")]
pub mod probes;
#[cfg(feature = "kernel")]
pub mod record;
#[cfg(feature = "kernel")]
pub mod soak;
