//! One module per subcommand.

pub mod analyze;
pub mod doctor;
pub mod soak;
pub mod probes;
pub mod record;
