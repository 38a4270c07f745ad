//! All integration tests in one binary (blazesym's layout): `suite/`.

mod suite;
