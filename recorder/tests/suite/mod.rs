//! Integration tests of the recorder through its public API.

mod common;

mod addrs;
mod analyzer;
mod fifo;
mod ftrace;
mod instrumentation;
mod multibuf;
mod seed;
mod sinks;
mod threads;
mod transitions;
mod xsk;
