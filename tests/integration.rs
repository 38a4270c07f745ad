//! All integration tests build into this one binary (fast links, one place
//! to look). Each subcommand has its module under `suite/`.

mod suite;
