//! End to end: strategies written in js, built by `tradebox plugin build` (`cargo xtask plugins`), on the host.
