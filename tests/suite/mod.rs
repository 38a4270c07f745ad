//! Integration test modules, one per subcommand or component.

mod analyze;
mod corpus;
mod doctor;
mod filters;
mod real_traces;
