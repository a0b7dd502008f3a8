//! spine: make the operator's registries executable.
//!
//! The crate reads like the pipeline it implements:
//! load -> validate (verify) -> render -> gather -> diff/plan -> apply -> receipt.
pub mod apply;
pub mod cli;
pub mod cmd;
pub mod diag;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod gather;
pub mod health;
pub mod import;
pub mod kinds;
pub mod load;
pub mod model;
pub mod plan;
pub mod receipt;
pub mod recover;
pub mod render;
pub mod safe;
pub mod secrets;
pub mod shell;
pub mod source;
pub mod verify;
