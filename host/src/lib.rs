//! The valbox service: settings, the local `run` command and the HTTP server.
//! The `valbox` binary (`main.rs`) only parses the command line and calls in here.

pub mod local_run;
pub mod sealing;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
