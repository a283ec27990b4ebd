//! Shared helpers for the xvs criterion benchmarks.
