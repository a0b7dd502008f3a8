//! spine: make the operator's registries executable.
//!
//! The crate reads like the pipeline it implements:
//! load -> validate (verify) -> render -> gather -> diff/plan -> apply -> receipt.

pub mod receipt;
