//! End-to-end tests of the real `prossimo` binary. One test binary (link time); one module
//! per area.

mod common;
mod durability;
mod import;
mod segments;
mod serve;
