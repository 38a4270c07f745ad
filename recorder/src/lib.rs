//! xskdbg recorder (being written).
