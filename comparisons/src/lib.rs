//! Nothing here: the comparison programs are the examples and benches of this crate.
