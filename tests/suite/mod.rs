//! Integration test modules, one per subcommand or component.

mod analyze;
mod corpus;
mod doctor;
mod real_traces;
