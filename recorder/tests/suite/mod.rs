//! Integration tests of the recorder through its public API.

mod common;

mod addrs;
mod fifo;
mod multibuf;
mod seed;
mod sinks;
mod threads;
mod transitions;
