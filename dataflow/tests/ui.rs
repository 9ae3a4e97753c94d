//! The compile-time contract of `#[stage]` and `#[pipeline]`: each fail case pins the exact
//! message a user sees (`.stderr` snapshots), each pass case must compile and run.
//!
//! Regenerate snapshots with `TRYBUILD=overwrite cargo test -p dataflow --test ui` and review
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/*/pass/*.rs");
    t.compile_fail("tests/ui/*/fail/*.rs");
}
