//! End to end: strategies written in python, built by `tradebox plugin build` (`cargo xtask plugins`), on the host.
