//! The shipped examples (config, checks, keepalived notify script) work as documented.
