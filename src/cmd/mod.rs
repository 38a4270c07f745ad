//! One module per subcommand.

pub mod analyze;
pub mod doctor;
pub mod probes;
pub mod record;
pub mod soak;
