//! Errors of the probes crate. Each names what failed, the kernel's answer,
//! and what this kernel offers instead.

use std::path::PathBuf;

use crate::backend::Backend;

/// Everything that can go wrong while probing, attaching or detaching.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A backend name, filter or option was not understood.
    #[error("{0}")]
    Usage(String),
    /// The kernel refused to load or attach a program of a backend.
    #[error("backend {backend}: {what} failed: {cause}; this kernel offers: {offers}")]
    Refused {
        /// The backend being attached.
        backend: Backend,
        /// The program/probe and step that failed.
        what: String,
        /// The kernel's answer (errno text, verifier log head).
        cause: String,
        /// What the running kernel can do (from [`crate::Caps::summary`]).
        offers: String,
    },
    /// `auto` found no backend that attaches; every attempt is listed.
    #[error("no probe backend could attach:\n{tried}\nthis kernel offers: {offers}")]
    NoBackend {
        /// One line per backend tried, with its reason.
        tried: String,
        /// What the running kernel can do.
        offers: String,
    },
    /// A tracefs operation failed.
    #[error(transparent)]
    Tracefs(#[from] xskdbg_tracefs::Error),
    /// Kernel BTF is missing or lacks a type/member the backend needs.
    #[error("kernel BTF ({path}): {msg}")]
    Btf {
        /// The BTF file read.
        path: PathBuf,
        /// What was missing.
        msg: String,
    },
    /// Any other I/O error on a named file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;
