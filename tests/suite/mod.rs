//! Integration test modules, one per subcommand or component.

mod analyze;
mod doctor;
mod filters;
mod real_traces;
