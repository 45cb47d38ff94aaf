//! The valbox service: settings, the local `run` command and the HTTP server.
//! The `valbox` binary (`main.rs`) only parses the command line and calls in here.
#![warn(missing_docs)]

pub mod check;
pub mod http;
pub mod jobs;
pub mod local_run;
pub mod mailer;
pub mod metrics;
pub mod redis_queue;
pub mod request_args;
pub mod request_id;
pub mod schedule;
pub mod sealing;
pub mod service;
pub mod settings;
pub mod store;
