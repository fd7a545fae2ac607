//! Every integration test in one binary (one build, one sandbox harness). Each test boots its
//! own throwaway systemd 252 and runs the real binary in it.

mod sandbox;
mod test;
mod unit;

mod alerts;
mod bus;
mod cli;
mod drill;
mod etcd;
mod examples;
mod faults;
mod fence;
mod input;
mod packaging;
mod paging;
mod reconcile;
mod safety;
mod seen;
mod shipped;
mod takeover;
mod two_sites;
mod witness_drill;
