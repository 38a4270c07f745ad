//! All integration tests of `xskdbg-visual` in one binary (see `suite/`).

mod suite;
