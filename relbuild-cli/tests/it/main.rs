//! `relbuild` end to end: the real binary against a real `docker-registry`
//! started by the test harness, with the synthetic fixture stream.

mod bad_input;
mod common;
mod flow;
mod guards;
mod local_releases;
mod messages;
mod mirrors;
mod noise;
mod pipes;
mod spellings;
mod verify;
