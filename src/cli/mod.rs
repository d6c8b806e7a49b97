//! The subcommands of the `sluice` binary beyond `run`.

pub mod parse;
