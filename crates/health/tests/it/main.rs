//! Integration tests: real servers on 127.0.0.1 with ephemeral ports, no
//! root needed.

mod checkers;
mod feedback;
mod fixtures;
mod monitor;
