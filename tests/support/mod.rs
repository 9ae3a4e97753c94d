//! Test support: real servers started by the tests.

pub mod redis;
